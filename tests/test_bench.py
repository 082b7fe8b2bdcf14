#!/usr/bin/python3
"""tests/test_bench.py - llava-bench end-to-end scenarios (issue 8).

Runs `llava-bench all --make DIR --make-preset tiny` (models written by
llava-mkmodel --preset tiny and llava-quantize) and checks the JSON against
figures worked out here, by hand, from the tiny preset's shape as documented
in `llava-mkmodel --help` - not from anything the tool printed:

  LM:     n_embd 128, 2 layers, 4 heads, 2 KV heads, FFN 256, vocab 380
          (built-in byte-level SPM vocabulary, BOS id 1 added)
  vision: 336 px, patch 14, width 64, 2 blocks, FFN 128, class token,
          MLP projector 64 -> 128 -> 128

Checked: token counts equal what was asked (read back from the session by
the child), FLOPs per run and weight bytes per decoded token, KV cache
bytes, file sizes, min/median/value/fraction arithmetic, RSS at least the
files. No timing assertions.

--llama-bench is run against a stand-in llama-bench (a script written here)
that logs its arguments and prints llama-bench's CSV with a tokens/s value
made from them: checked are the arguments each scenario passes, the parsing
(quoted fields with commas and doubled quotes), the ratio, and that a
failing or garbled llama-bench marks its row "failed" and the exit status.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

BUILD = os.environ.get("LLAVA_BUILDDIR", ".")
BENCH = os.path.join(BUILD, "llava-bench")

# --- the tiny preset, by hand --------------------------------------------
E, L, H, KV, FF, V = 128, 2, 4, 2, 256, 380
HEAD = E // H
KV_E = HEAD * KV
BLK_PARAMS = L * (E * E + E * KV_E + E * KV_E + E * E + 3 * E * FF)  # q k v o gate up down
OUT_PARAMS = E * V
VS, PATCH, VE, VL, VFF = 336, 14, 64, 2, 128
NP = (VS // PATCH) ** 2  # 576 image tokens
T = NP + 1  # with the class token

# bytes per 32 values of each matrix type (F16: 2 per value; blocks of 32)
BYTES_PER_32 = {"F16": 64, "Q8_0": 34, "Q4_0": 18}

P_TOK, N_TOK, PROMPT, QUESTION, RUNS = 100, 20, 5, 7, 3


def lm_flops(p0, n, logit_rows):
    keys = sum(p0 + i + 1 for i in range(n))
    return 2 * n * BLK_PARAMS + 4 * E * L * keys + 2 * logit_rows * OUT_PARAMS


def encode_flops():
    patch = 2 * NP * (PATCH * PATCH * 3 * VE)
    blocks = VL * (2 * T * (4 * VE * VE + 2 * VE * VFF) + 4 * T * T * VE)
    proj = 2 * NP * (VE * E + E * E)
    return patch + blocks + proj


def decode_weight_bytes(wtype):
    mat = lambda n: n * BYTES_PER_32[wtype] // 32
    norms = (2 * L + 1) * E * 4  # attn_norm, ffn_norm per layer + output_norm, F32
    return mat(BLK_PARAMS) + mat(OUT_PARAMS) + norms + mat(E)  # + one row of token_embd


def kv_bytes(n_ctx):
    return 2 * L * n_ctx * KV_E * 2  # K and V, F16


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def close(a, b, rel=1e-6):
    return a is not None and b is not None and abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


# A stand-in for llama.cpp's llama-bench: logs its argv (JSON lines) to
# $FAKE_LOG and prints the CSV header and one row like llama-bench -o csv,
# with avg_ts = 1000 + n_prompt + 7 * n_gen. $FAKE_MODE: "fail" exits 3,
# "garble" prints no avg_ts column.
FAKE_LLAMA_BENCH = r'''
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
mode = os.environ.get("FAKE_MODE", "")
if mode == "fail":
    sys.exit(3)
opt = dict(zip(args[::2], args[1::2]))
p, n, d = int(opt["-p"]), int(opt["-n"]), opt.get("-d", "0")
if mode == "garble":
    print("build_commit,n_prompt")
    print('"abc1234","%d"' % p)
    sys.exit(0)
print("build_commit,build_number,cpu_info,model_filename,n_prompt,n_gen,n_depth,avg_ns,stddev_ns,avg_ts,stddev_ts")
print('"abc1234","1","AMD EPYC, 2 cores ""fake""","%s","%d","%d","%s","1","0","%r","0.5"'
      % (opt["-m"], p, n, d, 1000.0 + p + 7 * n))
'''


def fake_llama_bench(tmp):
    path = os.path.join(tmp, "fake-llama-bench")
    with open(path, "w") as f:
        f.write("#!" + sys.executable + FAKE_LLAMA_BENCH)  # the interpreter running this test
    os.chmod(path, 0o755)
    return path


def read_log(path):
    with open(path) as f:
        return [json.loads(l) for l in f]


def main():
    if not os.access(BENCH, os.X_OK):
        print("skip: no", BENCH)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        models = os.path.join(tmp, "models")
        out_json = os.path.join(tmp, "bench.json")
        fake, fake_log = fake_llama_bench(tmp), os.path.join(tmp, "fake.log")
        env = dict(os.environ, FAKE_LOG=fake_log)
        cmd = [BENCH, "all", "--make", models, "--make-preset", "tiny", "--make-types", "q8_0,q4_0",
               "-r", str(RUNS), "--threads", "2", "-p", str(P_TOK), "-n", str(N_TOK),
               "--prompt", str(PROMPT), "--question", str(QUESTION), "--json", out_json, "--llama-bench", fake]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600, env=env)
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            print("FAIL: llava-bench exited with", proc.returncode)
            return 1
        names = ["tiny-f16.gguf", "tiny-q8_0.gguf", "tiny-q4_0.gguf", "tiny-mmproj.gguf"]
        sizes = {}
        for n in names:
            p = os.path.join(models, n)
            check(os.path.isfile(p), "--make wrote " + n)
            sizes[n] = os.path.getsize(p) if os.path.isfile(p) else -1
        with open(out_json) as f:
            doc = json.load(f)  # must be well-formed JSON

        mach = doc["machine"]
        check(mach["fma_peak_gflops"] > 0 and mach["int8_peak_gops"] > 0 and mach["int16_peak_gops"] > 0
              and mach["mem_triad_gbs"] > 0 and mach["mem_read_gbs"] > 0, "probes gave positive limits")
        res = doc["results"]
        stages = [r["stage"] for r in res]
        check(stages == ["encode"] + ["prefill"] * 3 + ["decode"] * 3 + ["ttft"] * 3, "stages in order: %s" % stages)
        wtypes = {"tiny-f16.gguf": "F16", "tiny-q8_0.gguf": "Q8_0", "tiny-q4_0.gguf": "Q4_0"}

        for r in res:
            tag = "%s %s" % (r["stage"], (r["lm"] or r["mmproj"])["path"])
            times = r["times_s"]
            check(len(times) == RUNS, tag + ": %d runs" % RUNS)
            check(close(r["time_min_s"], min(times)), tag + ": time_min = min(times)")
            check(close(r["time_median_s"], statistics.median(times)), tag + ": time_median = median(times)")
            files = 0
            if r["lm"]:
                name = os.path.basename(r["lm"]["path"])
                check(r["lm"]["weight_type"] == wtypes[name], tag + ": weight type")
                check(r["lm"]["file_bytes"] == sizes[name], tag + ": lm file size")
                files += sizes[name]
            if r["mmproj"]:
                check(r["mmproj"]["file_bytes"] == sizes["tiny-mmproj.gguf"], tag + ": mmproj file size")
                files += sizes["tiny-mmproj.gguf"]
            check(r["model_bytes"] == files, tag + ": model_bytes = file sizes")
            check(r["peak_rss_bytes"] >= files, tag + ": peak RSS >= model files")
            check(close(r["expected_bytes"], r["model_bytes"] + r["kv_bytes"]), tag + ": expected = files + KV")
            check(close(r["rss_ratio"], r["peak_rss_bytes"] / r["expected_bytes"]), tag + ": rss_ratio")
            if r["lm"]:
                check(r["kv_bytes"] == kv_bytes(r["n_ctx"]), tag + ": KV bytes for n_ctx %d" % r["n_ctx"])
            check(close(r["fraction"], r["achieved"] / r["limit"]), tag + ": fraction = achieved / limit")
            # prefill with Q4_0 / Q8_0 weights runs in the integer GEMM (AVX2): its limit is the
            # int8 / int16 probe
            # (decided by the kernels the library dispatched, not by the CPU)
            integer = r["stage"] == "prefill" and mach["kernels"] == "avx2"
            int8 = integer and r["lm"]["weight_type"] == "Q4_0"
            int16 = integer and r["lm"]["weight_type"] == "Q8_0"
            want_limit = (mach["mem_read_gbs"] if r["stage"] == "decode" else
                          mach["int8_peak_gops"] if int8 else
                          mach["int16_peak_gops"] if int16 else mach["fma_peak_gflops"])
            check(close(r["limit"], want_limit), tag + ": limit is the machine probe")

            st = r["stage"]
            if st == "encode":
                check(r["tokens_measured"] == NP and r["image_tokens"] == NP, tag + ": 576 image tokens")
                check(r["embed_width"] == E, tag + ": embedding width = LM width")
                check(r["flops_per_run"] == encode_flops(), tag + ": encode FLOPs %r vs %r" % (r["flops_per_run"], encode_flops()))
            elif st == "prefill":
                check(r["tokens_measured"] == P_TOK, tag + ": %d tokens evaluated" % P_TOK)
                check(r["n_ctx"] >= P_TOK, tag + ": n_ctx holds the prompt")
                check(r["flops_per_run"] == lm_flops(0, P_TOK, 1), tag + ": prefill FLOPs %r vs %r" % (r["flops_per_run"], lm_flops(0, P_TOK, 1)))
            elif st == "decode":
                wt = wtypes[os.path.basename(r["lm"]["path"])]
                check(r["tokens_measured"] == N_TOK, tag + ": %d tokens decoded" % N_TOK)
                check(r["n_ctx"] >= PROMPT + N_TOK, tag + ": n_ctx holds prompt + decode")
                check(r["weight_bytes_per_token"] == decode_weight_bytes(wt),
                      tag + ": weight bytes/token %r vs %r" % (r["weight_bytes_per_token"], decode_weight_bytes(wt)))
                check(close(r["achieved"], r["weight_bytes_per_token"] * N_TOK / r["time_min_s"] * 1e-9), tag + ": GB/s")
            elif st == "ttft":
                n = 1 + NP + QUESTION  # BOS + image + question
                check(r["question_tokens"] == QUESTION, tag + ": %d question tokens" % QUESTION)
                check(r["tokens_measured"] == n, tag + ": %d positions" % n)
                check(r["embed_width"] == E, tag + ": embedding width")
                want = encode_flops() + lm_flops(0, n, 3)
                check(r["flops_per_run"] == want, tag + ": ttft FLOPs %r vs %r" % (r["flops_per_run"], want))
                check(r["encode_median_s"] + r["prefill_median_s"] <= r["time_median_s"] * 1.5 + 1e-9, tag + ": breakdown within total")
            if st in ("prefill", "decode"):
                check(close(r["value_best"], r["tokens_measured"] / r["time_min_s"]), tag + ": tok/s from min time")
                check(close(r["value_median"], r["tokens_measured"] / r["time_median_s"]), tag + ": median tok/s")
            else:
                check(close(r["value_best"], r["time_min_s"]), tag + ": seconds = min time")
            if st != "decode":
                check(close(r["achieved"], r["flops_per_run"] / r["time_min_s"] * 1e-9), tag + ": GFLOP/s")
            here = r["llama_cpp_here"]
            if st in ("prefill", "decode"):
                want_ts = 1000.0 + (P_TOK if st == "prefill" else 7 * N_TOK)
                check(here is not None and here["error"] == "" and here["tok_s"] == want_ts,
                      tag + ": llama-bench tok/s %r, want %r" % (here, want_ts))
                check(here is not None and here["build_commit"] == "abc1234", tag + ": llama-bench build commit")
                check(here is not None and close(here["ratio_median"], r["value_median"] / want_ts),
                      tag + ": ratio = our median / llama-bench")
            else:
                check(here is None, tag + ": llama-bench not run for " + st)

        rows = [l for l in proc.stdout.splitlines() if l.startswith("| ") and not l.startswith("| stage")]
        check(len(rows) == len(res), "one Markdown row per result")
        for row, r in zip(rows, res):
            cell = row.split(" | ")[-2]  # the llama.cpp-here column, before the anchor
            if r["stage"] in ("prefill", "decode"):
                want = "%.1f tok/s (%.2fx)" % (r["llama_cpp_here"]["tok_s"], r["llama_cpp_here"]["ratio_median"])
                check(cell == want, "table cell %r, want %r" % (cell, want))
            else:
                check(cell == "-", "table cell %r for %s" % (cell, r["stage"]))

        # the arguments: one llama-bench run per prefill and decode row, in order
        want_args = []
        for r in res:
            if r["stage"] in ("prefill", "decode"):
                tests = (["-p", str(P_TOK), "-n", "0"] if r["stage"] == "prefill" else
                         ["-p", "0", "-n", str(N_TOK), "-d", str(PROMPT)])
                want_args.append(["-m", r["lm"]["path"], "-t", "2", "-r", str(RUNS)] + tests + ["-ngl", "0", "-o", "csv"])
        got_args = read_log(fake_log)
        check(got_args == want_args, "llama-bench arguments:\n%r\nwant\n%r" % (got_args, want_args))

        # a llama-bench that fails or prints something else: the row says so, exit status 1
        q8 = os.path.join(models, "tiny-q8_0.gguf")
        for mode in ("fail", "garble"):
            bad_json = os.path.join(tmp, mode + ".json")
            bad = subprocess.run([BENCH, "prefill", "--lm", q8, "-r", "1", "--threads", "1", "-p", "8",
                                  "--no-warmup", "--llama-bench", fake, "--json", bad_json],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600,
                                 env=dict(env, FAKE_MODE=mode))
            check(bad.returncode == 1, "%s llama-bench: exit status %d, want 1" % (mode, bad.returncode))
            rows = [l for l in bad.stdout.splitlines() if l.startswith("| prefill")]
            check(len(rows) == 1 and rows[0].split(" | ")[-2] == "failed", "%s llama-bench: row %r" % (mode, rows))
            with open(bad_json) as f:
                here = json.load(f)["results"][0]["llama_cpp_here"]
            check(here["tok_s"] is None and here["error"] != "", "%s llama-bench: JSON %r" % (mode, here))

        bad = subprocess.run([BENCH, "prefill"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        check(bad.returncode == 2, "no models: exit status 2")
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
