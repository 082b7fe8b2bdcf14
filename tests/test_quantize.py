#!/usr/bin/python3
"""llava-quantize on llava-mkmodel pairs, checked with the independent Python GGUF reader
(tests/reference/gguf.py, whose dequantizers were written from the spec and are tested
against it by test_reference_quants.py):

- every type f32 .. q6_k and the q4_k_m preset, for an LM and an mmproj file: the output
  parses (strict layout), keeps every key with its type and value except general.file_type
  (llama.cpp's llama_ftype number) and general.quantization_version (2, quantized outputs),
  keeps tensor names, order and shapes, and gives each tensor the type of the documented rule
  (1-D F32, 4-D F16, q4_k_m's Q6_K set, original type when ne[0] does not fit the block);
- dequantized weights vs the source: relative RMS error and max error per block within
  per-type bounds (from the block formats: half a quantization step, plus slack for the
  k-quants' quantized scales); the measured RMS errors are printed;
- the quantized LMs run through the C library: llava-cli --temp 0 -n 8 prints 8 token ids in
  the vocabulary; the f32 conversion (exact values) gives the same ids as the F16 source; a few
  quantized mmproj files encode an image through llava-cli;
- usage errors: unknown type (exit 2), missing input / unwritable output / output = input (exit 1).
Exit 0 pass, 1 fail, 77 skip (no numpy or tools not built)."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy missing")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("LLAVA_SRCDIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "reference"))
import gguf  # noqa: E402

BUILD = os.environ.get("LLAVA_BUILDDIR", "")
QUANT = os.path.join(BUILD, "llava-quantize")
MKMODEL = os.path.join(BUILD, "llava-mkmodel")
CLI = os.path.join(BUILD, "llava-cli")
for tool in (QUANT, MKMODEL, CLI):
    if not os.access(tool, os.X_OK):
        print("SKIP: %s not built" % tool)
        sys.exit(77)

# name -> (main ggml type, llama_ftype, relative RMS bound, max |error| bound in units of the
# block's max |x|). Float bounds: F16 source values are exact in F32/F16; BF16 keeps 8
# significant bits (relative rounding error <= 2^-9). Block types with b-bit codes on
# [-amax, amax] have a step of about 2*amax/(2^b - 1); the max bound allows half a step plus
# the rounding of the scales (F16 d, 6-bit/4-bit sub-block scales and mins in the k-quants),
# the RMS-refined scales (which trade a larger max error for a smaller RMS) and, for the
# symmetric Q4_0/Q5_0, the unused top level (d = max/-8: the other sign reaches only 7/8).
# Measured on this test's data (see the printout): rel RMS Q8_0 0.0051, Q6_K 0.017, Q5_K 0.036,
# Q5_1 0.034, Q5_0 0.038, Q4_K 0.071, Q4_1 0.071, Q4_0 0.077, Q3_K 0.14, Q2_K 0.27, BF16 0.0017.
G = gguf
TYPES = {
    "f32": (G.F32, 0, 0.0, 0.0),
    "f16": (G.F16, 1, 0.0, 0.0),
    "bf16": (G.BF16, 32, 0.003, 2.0 ** -8),
    "q8_0": (G.Q8_0, 7, 0.007, 0.006),
    "q5_1": (G.Q5_1, 9, 0.05, 0.06),
    "q5_0": (G.Q5_0, 8, 0.06, 0.1),
    "q4_1": (G.Q4_1, 3, 0.10, 0.12),
    "q4_0": (G.Q4_0, 2, 0.12, 0.2),
    "q6_k": (G.Q6_K, 18, 0.025, 0.045),
    "q5_k": (G.Q5_K, 16, 0.05, 0.07),
    "q4_k": (G.Q4_K, 14, 0.10, 0.12),
    "q3_k": (G.Q3_K, 11, 0.20, 0.4),
    "q2_k": (G.Q2_K, 10, 0.40, 0.6),
    "q4_k_m": (G.Q4_K, 15, 0.10, 0.12),
}

failures = []


def check(cond, msg):
    if not cond:
        print("FAIL " + msg)
        failures.append(msg)
    return cond


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          errors="replace", **kw)


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def expected_type(name, ti, tname, n_layer):
    main = TYPES[tname][0]
    if ti.type not in (G.F32, G.F16, G.BF16):
        return ti.type
    if ti.n_dims == 1:
        return G.F32
    if ti.n_dims == 4:
        return G.F32 if main == G.F32 else G.F16
    want = main
    if tname == "q4_k_m":
        parts = name.split(".")
        if name == "output.weight" or (parts[0] == "blk" and ".".join(parts[2:]) in
                                       ("attn_v.weight", "ffn_down.weight") and
                                       use_more_bits(int(parts[1]), n_layer)):
            want = G.Q6_K
    if ti.ne[0] % G.GGML_TYPES[want][1]:
        return ti.type
    return want


def same_value(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


def check_file(src_path, out_path, tname, label, stats):
    src, out = gguf.GGUFFile(src_path), gguf.GGUFFile(out_path)
    try:
        check(not out.check_strict_layout(), "%s: layout problems %s" % (label, out.check_strict_layout()))
        main, ftype = TYPES[tname][0], TYPES[tname][1]
        # metadata: everything copied, file_type set
        for k in src.key_order:
            if k == "general.file_type":
                continue
            check(k in out.meta, "%s: key %s missing" % (label, k)) and \
                check(out.meta_type(k) == src.meta_type(k) and same_value(out.meta[k], src.meta[k]),
                      "%s: key %s changed" % (label, k))
        check(out.get("general.file_type") == ftype and out.meta_type("general.file_type")[0] == G.UINT32,
              "%s: general.file_type %r, want uint32 %d" % (label, out.get("general.file_type"), ftype))
        quantized = main not in (G.F32, G.F16, G.BF16)
        check((out.get("general.quantization_version") == 2) == quantized,
              "%s: general.quantization_version %r" % (label, out.get("general.quantization_version")))
        extra = set(out.key_order) - set(src.key_order) - {"general.file_type", "general.quantization_version"}
        check(not extra, "%s: unexpected keys %s" % (label, sorted(extra)))
        # tensors
        check(out.tensor_order == src.tensor_order, "%s: tensor names/order differ" % label)
        n_layer = 1 + max([int(n.split(".")[1]) for n in src.tensor_order if n.startswith("blk.")] or [-1])
        for name in src.tensor_order:
            si, oi = src.tensors[name], out.tensors.get(name)
            if oi is None:
                continue
            check(oi.ne == si.ne and oi.n_dims == si.n_dims, "%s: %s shape %s vs %s" % (label, name, oi.ne, si.ne))
            want_t = expected_type(name, si, tname, n_layer)
            if not check(oi.type == want_t, "%s: %s type %s, want %s" % (label, name, G.type_name(oi.type),
                                                                        G.type_name(want_t))):
                continue
            a = src.array(name).astype(np.float64).reshape(-1)
            b = out.array(name).astype(np.float64).reshape(-1)
            err = b - a
            st = stats.setdefault(G.type_name(oi.type), [0.0, 0.0, 0, 0.0])
            st[0] += float(np.sum(err * err))
            st[1] += float(np.sum(a * a))
            st[2] += 1
            # max error per block, in units of the block's max |x|
            blk = G.GGML_TYPES[oi.type][1]
            if blk > 1:
                e = np.abs(err).reshape(-1, blk).max(1)
                m = np.abs(a).reshape(-1, blk).max(1)
                worst = float(np.max(e / np.maximum(m, 1e-30)))
                st[3] = max(st[3], worst)
                bound = max(TYPES[t][3] for t in TYPES if TYPES[t][0] == oi.type)
                check(worst <= bound, "%s: %s max block error %.4g x amax > %.4g" % (label, name, worst, bound))
            elif oi.type == G.BF16:
                rel = np.abs(err) / np.maximum(np.abs(a), 1e-30)
                check(float(rel.max()) <= 2.0 ** -8, "%s: %s bf16 rounding %.3g" % (label, name, float(rel.max())))
            elif oi.type == si.type or (oi.type == G.F32 and si.type in (G.F16, G.BF16)):
                check(np.array_equal(a, b), "%s: %s not copied exactly" % (label, name))
    finally:
        src.close()
        out.close()


DATA = os.environ.get("LLAVA_TEST_DATA") or os.path.join(SRC, "..", "shared", "data")
IMAGE = os.path.join(DATA, "images", "test-1.jpeg")


def cli_ids(lm_path, mmproj=None):
    extra = ["--mmproj", mmproj, "--image", IMAGE] if mmproj else []
    r = run([CLI, "-m", lm_path] + extra + ["-p", "Hello there", "--temp", "0", "-n", "8", "--print-ids",
                                            "--no-timings", "-t", "2"], timeout=300)
    if r.returncode != 0:
        return None, r.stderr.strip()[-300:]
    try:
        return [int(v) for v in r.stdout.strip().splitlines()[-1].split(",")], ""
    except (ValueError, IndexError):
        return None, "no id line in %r" % r.stdout[-200:]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        lm, mm = os.path.join(tmp, "lm.gguf"), os.path.join(tmp, "mm.gguf")
        # widths that fit every block size (256) except where noted, 8 layers for q4_k_m's rule
        r = run([MKMODEL, "--out-lm", lm, "--out-mmproj", mm, "--n-embd", "256", "--n-ff", "768",
                 "--n-layer", "8", "--v-embd", "256", "--v-ff", "512", "--vision-size", "56", "--seed", "5"])
        if not check(r.returncode == 0, "llava-mkmodel failed: %s" % r.stderr):
            return
        # the default tiny pair: n_embd 128, so the 256-blocks do not fit most matrices
        tlm, tmm = os.path.join(tmp, "tlm.gguf"), os.path.join(tmp, "tmm.gguf")
        run([MKMODEL, "--out-lm", tlm, "--out-mmproj", tmm, "--seed", "6"])
        src = gguf.GGUFFile(lm)
        n_vocab = src.tensors["token_embd.weight"].ne[1]
        src.close()
        base_ids, why = cli_ids(lm)
        check(base_ids is not None and len(base_ids) == 8, "llava-cli on the F16 source: %s" % why)
        stats = {}
        for tname in TYPES:
            files = [("lm", lm), ("mmproj", mm)]
            if tname in ("q8_0", "q4_k", "q2_k", "q4_k_m"):  # block sizes that do not fit ne[0] = 128
                files += [("tiny-lm", tlm), ("tiny-mmproj", tmm)]
            for label, path in files:
                out = os.path.join(tmp, "%s-%s.gguf" % (label, tname))
                r = run([QUANT, path, out, tname, "2"], timeout=600)
                tag = "%s %s" % (tname, label)
                if not check(r.returncode == 0, "%s: llava-quantize exit %d: %s" % (tag, r.returncode, r.stderr[-300:])):
                    continue
                probe = gguf.GGUFFile(path)
                n_t = len(probe.tensor_order)
                probe.close()
                progress = [l for l in r.stderr.splitlines() if l.startswith("[")]
                check(len(progress) == n_t, "%s: %d progress lines for %d tensors" % (tag, len(progress), n_t))
                if label.startswith("tiny") and TYPES[tname][0] in (G.Q2_K, G.Q3_K, G.Q4_K, G.Q5_K, G.Q6_K):
                    check("not a multiple of the block size" in r.stderr, "%s: no note on kept tensors" % tag)
                check_file(path, out, tname, tag, stats if not label.startswith("tiny") else {})
                if label == "lm":
                    ids, why = cli_ids(out)
                    if check(ids is not None and len(ids) == 8 and all(0 <= i < n_vocab for i in ids),
                             "%s: llava-cli: %s %s" % (tag, ids, why)):
                        print("%-7s llava-cli ids %s" % (tname, ",".join(map(str, ids))))
                    if tname == "f32":
                        check(ids == base_ids, "f32 conversion changed the greedy ids: %s vs %s" % (ids, base_ids))
                    os.remove(out)
                if label == "mmproj" and tname in ("q8_0", "q4_0", "q4_k", "q4_k_m") and os.path.exists(IMAGE):
                    ids, why = cli_ids(lm, out)  # the vision tower on quantized weights
                    check(ids is not None and len(ids) == 8 and all(0 <= i < n_vocab for i in ids),
                          "%s: llava-cli with the image: %s %s" % (tag, ids, why))
        print("relative RMS error of the dequantized weights vs the F16 source (lm + mmproj matrices):")
        for t in sorted(stats, key=lambda s: G.TYPE_BY_NAME[s]):
            e2, a2, n, worst = stats[t]
            rel = (e2 / a2) ** 0.5 if a2 else 0.0
            bound = max(TYPES[k][2] for k in TYPES if G.type_name(TYPES[k][0]) == t) if any(
                G.type_name(TYPES[k][0]) == t for k in TYPES) else 0.0
            print("  %-5s %3d tensors  rel RMS %.5f (bound %.3g)  max block error %.4f x amax" % (t, n, rel, bound, worst))
            if t not in ("F32", "F16"):
                check(rel <= bound, "%s: relative RMS %.4g > %.4g" % (t, rel, bound))
            else:
                check(rel == 0.0, "%s: conversion not exact (rel RMS %.3g)" % (t, rel))
        # usage errors
        r = run([QUANT, lm, os.path.join(tmp, "x.gguf"), "q9_9"])
        check(r.returncode == 2 and "unknown type" in r.stderr, "unknown type: exit %d" % r.returncode)
        r = run([QUANT, os.path.join(tmp, "missing.gguf"), os.path.join(tmp, "x.gguf"), "q4_0"])
        check(r.returncode == 1 and "missing.gguf" in r.stderr, "missing input: exit %d" % r.returncode)
        r = run([QUANT, lm, os.path.join(tmp, "no", "such", "dir.gguf"), "q4_0"])
        check(r.returncode == 1, "unwritable output: exit %d" % r.returncode)
        r = run([QUANT, lm, lm, "q4_0"])
        check(r.returncode == 1 and "is the input" in r.stderr, "output = input: exit %d" % r.returncode)
        r = run([QUANT, lm])
        check(r.returncode == 2, "too few arguments: exit %d" % r.returncode)


main()
if failures:
    print("%d failures" % len(failures))
    sys.exit(1)
print("PASS")
