"""test_preprocess.py - libllava's image decoding and LLaVA preprocessing must
be byte-identical to Pillow (the reference LLaVA pipeline):

    im = Image.open(f).convert('RGB')                      # decoded bytes
    expand2square(im, (122, 116, 104))                     # pad, original size
    .resize((336, 336), Image.BICUBIC)                     # preprocessed bytes

for the shared test images and for PNGs and JPEGs generated here (by Pillow,
or by a small PNG writer below for what Pillow cannot write: 16-bit colour,
2/4-bit gray, Adam7 interlacing, palettes with missing entries, eXIf after
the pixels). The library side is tests/llv-image-dump. Differences are
counted in bytes and must be 0; within-1 is a failure.

Run by `make check` with /usr/bin/python3 (PYTHON_REF); needs LLAVA_BUILDDIR.
"""
import io
import os
import struct
import shutil
import subprocess
import sys
import tempfile
import warnings
import zlib

try:
    import numpy as np
    from PIL import Image, ImageOps
except ImportError as e:  # the reference Python lacks Pillow/numpy
    print("SKIP:", e)
    sys.exit(77)

warnings.filterwarnings("ignore")  # Pillow's palette-transparency hint
BICUBIC = getattr(Image, "Resampling", Image).BICUBIC
PAD = (122, 116, 104)
SIDE = 336
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)

builddir = os.environ.get("LLAVA_BUILDDIR", ".")
datadir = os.environ.get("LLAVA_TEST_DATA", "")
DUMP = os.path.join(builddir, "tests", "llv-image-dump")
if not os.access(DUMP, os.X_OK):
    print("SKIP: no", DUMP)
    sys.exit(77)

rng = np.random.default_rng(20261128)
failures = []
checked = {"decode": 0, "preprocess": 0, "failure-agreement": 0}


# ---------------------------------------------------------------- reference
def expand2square(im, color):
    """LLaVA's expand2square (llava/mm_utils.py)."""
    w, h = im.size
    if w == h:
        return im
    side = max(w, h)
    out = Image.new(im.mode, (side, side), color)
    out.paste(im, ((side - w) // 2, (side - h) // 2))
    return out


def clip_resize_crop(im, size):
    """CLIPImageProcessor: shortest edge -> size (long edge int(size*long/short)),
    then a centre crop of size x size. For the square from expand2square the
    resize is to (size, size) and the crop offsets are 0: checked here."""
    w, h = im.size
    short, long_ = min(w, h), max(w, h)
    new_long = int(size * long_ / short)
    nw, nh = (size, new_long) if w <= h else (new_long, size)
    assert (nw, nh) == (size, size), (w, h, nw, nh)
    out = im.resize((nw, nh), BICUBIC)
    top, left = (nh - size) // 2, (nw - size) // 2
    assert top == 0 and left == 0
    return out.crop((left, top, left + size, top + size))


def pillow_decode(path, exif=False):
    im = Image.open(path)
    if exif:
        im = ImageOps.exif_transpose(im)
    return im.convert("RGB")


# ---------------------------------------------------------------- library
def run_dump(path, *opts):
    out = path + ".out.raw"
    p = subprocess.run([DUMP, *opts, path, out], capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip()
    w, h = map(int, p.stdout.split())
    data = np.fromfile(out, dtype=np.uint8)
    os.unlink(out)
    return (w, h, data), None


def count_diff(a, b):
    a = np.asarray(a, dtype=np.uint8).reshape(-1)
    b = np.asarray(b, dtype=np.uint8).reshape(-1)
    if a.size != b.size:
        return -1
    return int(np.count_nonzero(a != b))


def check_image(path, label, exif=False, preprocess=True, sizes=(SIDE,), normalize=False):
    ref = pillow_decode(path, exif)
    opts = ["--exif"] if exif else []
    got, err = run_dump(path, *opts)
    if got is None:
        failures.append(f"{label}: library failed: {err}")
        return
    w, h, data = got
    nd = count_diff(np.asarray(ref), data) if (w, h) == ref.size else -1
    checked["decode"] += 1
    if nd != 0:
        failures.append(f"{label}: decode {w}x{h} vs Pillow {ref.size}: {nd} differing bytes")
        return
    if not preprocess:
        return
    square = expand2square(ref, PAD)
    for n in sizes:
        want = np.asarray(clip_resize_crop(square, n) if n == SIDE else square.resize((n, n), BICUBIC))
        for mode in ([], ["--reference"]):
            got, err = run_dump(path, *opts, *mode, "--preprocess", str(n))
            if got is None:
                failures.append(f"{label}: preprocess {n} {mode} failed: {err}")
                continue
            nd = count_diff(want, got[2])
            checked["preprocess"] += 1
            if nd != 0:
                failures.append(f"{label}: preprocess {n}{' (reference path)' if mode else ''}: {nd} differing bytes")
    if normalize:
        # llv_normalize_planar: (float)v / 255.0f, then (x - mean) / std, in
        # float32 (numpy's float32 ops round the same way), planar [3][n][n].
        got, err = run_dump(path, *opts, "--preprocess", str(SIDE), "--normalize")
        if got is None:
            failures.append(f"{label}: normalize failed: {err}")
        else:
            want = np.asarray(clip_resize_crop(square, SIDE)).astype(np.float32) / np.float32(255.0)
            want = ((want - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1).reshape(-1)
            gotf = got[2].view(np.float32)
            nd = int(np.count_nonzero(gotf != want)) if gotf.size == want.size else -1
            checked["normalize"] = checked.get("normalize", 0) + 1
            if nd != 0:
                failures.append(f"{label}: normalize: {nd} differing floats")
    print(f"ok {label} ({w}x{h})")


# ---------------------------------------------------------------- content
def picture(w, h, channels=3):
    """Noise on top of gradients: every rounding case of the filters shows."""
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 255 // max(w - 1, 1) + y * 127 // max(h - 1, 1)) % 256
    img = np.empty((h, w, channels), dtype=np.int32)
    for c in range(channels):
        img[..., c] = base * (c + 1) % 256
    img += rng.integers(-60, 61, size=img.shape)
    # saturated blocks push the kernel's overshoot against 0 and 255
    img[: h // 3, : w // 4] = 255
    img[h // 2:, w // 2: w // 2 + max(w // 8, 1)] = 0
    return np.clip(img, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- PNG writer
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _pack_rows(samples, depth):
    """samples: (h, w, spp) ints < 2**depth -> scanlines with filter byte 0."""
    out = bytearray()
    for row in samples:
        flat = row.reshape(-1).astype(np.uint32)
        if depth == 16:
            raw = flat.astype(">u2").tobytes()
        elif depth == 8:
            raw = flat.astype(np.uint8).tobytes()
        else:
            per = 8 // depth
            pad = (-len(flat)) % per
            flat = np.concatenate([flat, np.zeros(pad, np.uint32)]).reshape(-1, per)
            shifts = np.array([8 - depth * (i + 1) for i in range(per)], np.uint32)
            raw = (flat << shifts).sum(axis=1).astype(np.uint8).tobytes()
        out += b"\0" + raw
    return bytes(out)


def write_png(path, samples, color_type, depth, interlace=False, plte=None, trns=None, exif=None, exif_after=False):
    h, w = samples.shape[:2]
    if samples.ndim == 2:
        samples = samples[..., None]
    if interlace:
        raw = b"".join(_pack_rows(samples[ys::yd, xs::xd], depth)
                       for xs, ys, xd, yd in ADAM7 if xs < w and ys < h)
    else:
        raw = _pack_rows(samples, depth)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    if plte is not None:
        png += _chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).reshape(-1)))
    if trns is not None:
        png += _chunk(b"tRNS", trns)
    if exif is not None and not exif_after:
        png += _chunk(b"eXIf", exif)
    png += _chunk(b"IDAT", zlib.compress(raw, 6))
    if exif is not None and exif_after:
        png += _chunk(b"eXIf", exif)
    png += _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def exif_bytes(orientation, big_endian=True):
    e = Image.Exif()
    e[0x0112] = orientation
    b = e.tobytes()
    return b if b[:2] in (b"MM", b"II") else b[6:]


# ---------------------------------------------------------------- the tests
def main():
    tmp = tempfile.mkdtemp(prefix="llv-preprocess-")

    def path(name):
        return os.path.join(tmp, name)

    # Shared images (made outside the project).
    for name in ("test-1.jpeg", "shapes336.png"):
        p = os.path.join(datadir, "images", name)
        if os.path.exists(p):
            check_image(p, "shared " + name, sizes=(SIDE, 224), normalize=True)
        else:
            failures.append(f"missing shared image {p}")

    sizes = [(1, 1), (2, 3), (17, 300), (300, 17), (641, 479), (1000, 333), (100, 60), (336, 200),
             (200, 336), (337, 337), (335, 1), (1, 4000), (5000, 3), (512, 512)]
    for w, h in sizes:
        rgb = picture(w, h)
        p = path(f"rgb_{w}x{h}.png")
        Image.fromarray(rgb, "RGB").save(p)
        check_image(p, f"png rgb {w}x{h}", normalize=(w, h) == (641, 479))
        p = path(f"rgb_{w}x{h}.jpeg")
        Image.fromarray(rgb, "RGB").save(p, quality=90)
        check_image(p, f"jpeg 4:2:0 {w}x{h}")

    # Pillow-written PNG modes.
    base = picture(123, 77, 4)
    modes = {
        "L": Image.fromarray(base[..., 0], "L"),
        "1": Image.fromarray(base[..., 0], "L").convert("1"),
        "RGBA": Image.fromarray(base, "RGBA"),
        "LA": Image.fromarray(base[..., :2].copy(), "LA"),
        "P-adaptive": Image.fromarray(base[..., :3].copy(), "RGB").convert("P", palette=Image.ADAPTIVE, colors=200),
        "P-16": Image.fromarray(base[..., :3].copy(), "RGB").convert("P", palette=Image.ADAPTIVE, colors=16),
        "I;16": Image.fromarray((base[..., 0].astype(np.uint16) * 97 % 400).astype(np.uint16), "I;16"),
    }
    for name, im in modes.items():
        p = path(f"mode_{name}.png")
        kw = {"bits": 4} if name == "P-16" else {}
        im.save(p, **kw)
        check_image(p, f"png Pillow mode {name}")
    im = modes["P-adaptive"].copy()
    im.info["transparency"] = 3
    p = path("mode_P_trns.png")
    im.save(p, transparency=3)
    check_image(p, "png Pillow palette with tRNS")

    # Hand-written PNGs: what Pillow cannot write.
    s16 = rng.integers(0, 65536, size=(45, 67, 4), dtype=np.uint32)
    s16[:5] = rng.integers(0, 600, size=(5, 67, 4))  # gray16 values around 255 (the clip)
    for interlace in (False, True):
        tag = "interlaced" if interlace else "plain"
        cases = [
            ("rgb8", s16[..., :3] >> 8, 2, 8, {}),
            ("rgb16", s16[..., :3], 2, 16, {}),
            ("rgba16", s16, 6, 16, {}),
            ("rgba8", s16 >> 8, 6, 8, {}),
            ("gray16", s16[..., 0], 0, 16, {}),
            ("gray8", s16[..., 0] >> 8, 0, 8, {"trns": struct.pack(">H", 7)}),
            ("gray4", s16[..., 0] >> 12, 0, 4, {}),
            ("gray2", s16[..., 0] >> 14, 0, 2, {}),
            ("gray1", s16[..., 0] >> 15, 0, 1, {}),
            ("la8", s16[..., :2] >> 8, 4, 8, {}),
            ("la16", s16[..., :2], 4, 16, {}),
            ("rgb16-trns", s16[..., :3], 2, 16, {"trns": struct.pack(">HHH", 1, 2, 3)}),
            # 2-bit palette with only 3 entries: index 3 falls outside PLTE
            ("pal2-short", s16[..., 0] >> 14, 3, 2, {"plte": [[255, 0, 0], [0, 255, 0], [0, 0, 255]]}),
            ("pal4", s16[..., 0] >> 12, 3, 4, {"plte": rng.integers(0, 256, (16, 3)), "trns": bytes(range(0, 160, 10))}),
            ("pal8-short", s16[..., 0] >> 8, 3, 8, {"plte": rng.integers(0, 256, (100, 3))}),
        ]
        for name, samples, ct, depth, kw in cases:
            p = path(f"hand_{name}_{tag}.png")
            write_png(p, samples, ct, depth, interlace=interlace, **kw)
            check_image(p, f"png {name} {tag}")
    # An interlaced image smaller than the Adam7 tile (empty passes).
    for w, h in ((1, 1), (3, 2), (9, 5)):
        p = path(f"hand_tiny_{w}x{h}.png")
        write_png(p, picture(w, h), 2, 8, interlace=True)
        check_image(p, f"png interlaced {w}x{h}")

    # JPEG flavours.
    rgb = picture(641, 479)
    jpegs = {
        "progressive": dict(quality=85, progressive=True),
        "4:4:4": dict(quality=95, subsampling=0),
        "4:2:2": dict(quality=75, subsampling=1),
        "optimized q30": dict(quality=30, optimize=True),
    }
    for name, kw in jpegs.items():
        p = path(f"jpeg_{name.replace(' ', '_').replace(':', '')}.jpeg")
        Image.fromarray(rgb, "RGB").save(p, **kw)
        check_image(p, f"jpeg {name}")
    for w, h in ((1, 1), (2, 3), (17, 300), (1000, 333)):
        p = path(f"jpeg_prog_{w}x{h}.jpeg")
        Image.fromarray(picture(w, h), "RGB").save(p, quality=90, progressive=True)
        check_image(p, f"jpeg progressive {w}x{h}")
    p = path("jpeg_gray.jpeg")
    Image.fromarray(rgb[..., 1].copy(), "L").save(p, quality=88)
    check_image(p, "jpeg gray")
    p = path("jpeg_gray_prog.jpeg")
    Image.fromarray(rgb[..., 2].copy(), "L").save(p, quality=88, progressive=True)
    check_image(p, "jpeg gray progressive")
    p = path("jpeg_cmyk.jpeg")
    Image.fromarray(picture(211, 97, 4), "CMYK").save(p, quality=90)
    check_image(p, "jpeg CMYK (Adobe)")

    # Damaged files: the library must fail exactly when Pillow fails, and
    # where both decode (libjpeg recovers from some corrupt entropy data,
    # the same way in both) the bytes must be identical.
    def agree(q, label, stricter_ok=False):
        try:
            pillow_decode(q)
            pil_ok = True
        except Exception:
            pil_ok = False
        got, err = run_dump(q)
        checked["failure-agreement"] += 1
        if pil_ok and got is None and stricter_ok:
            # Pillow ignores a missing zlib checksum / IDAT CRC after the
            # last row; the library (libpng) refuses such a truncated file.
            checked["stricter than Pillow"] = checked.get("stricter than Pillow", 0) + 1
            print(f"note {label}: Pillow decodes, library refuses: {err}")
        elif pil_ok != (got is not None):
            failures.append(f"{label}: Pillow {'decodes' if pil_ok else 'fails'}, library "
                            f"{'decodes' if got else 'fails: ' + str(err)}")
        elif pil_ok:
            check_image(q, label, preprocess=False)

    for prog in (False, True):
        p = path(f"jpeg_base_{prog}.jpeg")
        Image.fromarray(picture(64, 48), "RGB").save(p, quality=90, progressive=prog)
        data = open(p, "rb").read()
        kind = "progressive" if prog else "baseline"
        cuts = sorted(set([len(data) - 1, len(data) - 2, len(data) - 3, 200, 2, 1] +
                          [len(data) * i // 16 for i in range(1, 16)]))
        for cut in cuts:
            q = path(f"jpeg_cut_{kind}_{cut}.jpeg")
            open(q, "wb").write(data[:cut])
            agree(q, f"jpeg {kind} cut at {cut}/{len(data)}")
        sos = data.find(b"\xff\xda")
        for trial in range(int(os.environ.get("LLV_IMAGE_FUZZ_TRIALS", "12"))):
            d = bytearray(data)
            for _ in range(1 + trial % 3):
                pos = int(rng.integers(sos + 12, len(d) - 2))
                d[pos] ^= int(rng.integers(1, 256))
            q = path(f"jpeg_corrupt_{kind}_{trial}.jpeg")
            open(q, "wb").write(bytes(d))
            agree(q, f"jpeg {kind} corrupt #{trial}")
    p = path("png_base.png")
    Image.fromarray(picture(30, 20), "RGB").save(p)
    data = open(p, "rb").read()
    for cut in (len(data) - 12, len(data) - 20, len(data) // 2, 40, 20, 7):
        q = path(f"png_cut_{cut}.png")
        open(q, "wb").write(data[:cut])
        agree(q, f"png cut at {cut}/{len(data)}", stricter_ok=(cut >= len(data) - 20))

    # EXIF orientation: off by default (pixels as stored), on with --exif
    # (as ImageOps.exif_transpose).
    small = picture(7, 4)
    for o in range(1, 9):
        for le in (False, True):
            ex = Image.Exif()
            ex[0x0112] = o
            p = path(f"exif_{o}_{'le' if le else 'be'}.jpeg")
            blob = ex.tobytes()
            if le:  # rewrite as little-endian TIFF by hand
                tiff = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, o, 0) + b"\0\0\0\0"
                blob = b"Exif\0\0" + tiff
            Image.fromarray(small, "RGB").save(p, quality=95, exif=blob)
            check_image(p, f"jpeg exif {o} {'LE' if le else 'BE'} off", preprocess=False)
            check_image(p, f"jpeg exif {o} {'LE' if le else 'BE'} on", exif=True, preprocess=(o == 6))
        p = path(f"exif_{o}.png")
        write_png(p, small, 2, 8, exif=exif_bytes(o), exif_after=(o % 2 == 0))
        check_image(p, f"png eXIf {o} {'after' if o % 2 == 0 else 'before'} IDAT on", exif=True, preprocess=False)

    shutil.rmtree(tmp, ignore_errors=True)
    print(f"checked: {checked}")
    if failures:
        print(f"{len(failures)} FAILURES:")
        for f in failures:
            print("  " + f)
        return 1
    print("all byte-identical (0 differing bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
