"""world.py - the synthetic visual world: scenes of 1-4 coloured shapes on a background,
rendered to small RGB images, with captions and bounding boxes.

A scene is a dict {"bg": name, "objects": [{"shape", "colour", "size", "cell", "box"}]}.
Objects sit in distinct cells of a 3x3 grid (with a few pixels of jitter, so large
neighbours may touch or overlap a little); "cell" gives the position word, "box" the
pixel bounding box (x0, y0, x1, y1). Every (colour, shape) pair appears at most once
per scene so that "the red circle" always names one object.

Held-out combinations (HELD_OUT) never appear in the training split; the validation
and test splits contain them, to measure generalisation to unseen attribute pairs.
Everything is a pure function of the seed (Python's random.Random + PIL drawing).
"""
import random

from PIL import Image, ImageDraw

SHAPES = ["circle", "square", "triangle"]
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220),
           "yellow": (235, 215, 40), "purple": (150, 60, 190)}
BACKGROUNDS = {"white": (240, 240, 240), "gray": (128, 128, 128), "black": (20, 20, 20)}
SIZES = {"small": 0.26, "large": 0.42}           # diameter as a fraction of the image side
POSITIONS = ["top left", "top middle", "top right",
             "middle left", "center", "middle right",
             "bottom left", "bottom middle", "bottom right"]
NUMBERS = ["no", "one", "two", "three", "four"]
HELD_OUT = {("green", "triangle"), ("blue", "circle")}


def cell_rc(cell):
    return cell // 3, cell % 3


def random_scene(rng, split):
    """One scene. split 'train' never draws a HELD_OUT pair; 'val'/'test' force at least
    one held-out pair in about a third of the scenes."""
    while True:
        n = rng.randint(1, 4)
        cells = rng.sample(range(9), n)
        objs, used = [], set()
        for c in cells:
            while True:
                pair = (rng.choice(list(COLOURS)), rng.choice(SHAPES))
                if pair not in used and not (split == "train" and pair in HELD_OUT):
                    break
            used.add(pair)
            objs.append({"colour": pair[0], "shape": pair[1], "size": rng.choice(list(SIZES)), "cell": c})
        if split != "train" and rng.random() < 0.35 and not (used & HELD_OUT):
            continue                                    # retry to get a held-out pair in this scene
        bg = rng.choice(list(BACKGROUNDS))
        objs.sort(key=lambda o: o["cell"])              # raster order: descriptions list objects this way
        return {"bg": bg, "objects": objs, "jitter": [(rng.randint(-3, 3), rng.randint(-3, 3)) for _ in objs],
                "noise_seed": rng.randrange(1 << 30)}


def _jitter_colour(rgb, rng, amount=18):
    return tuple(max(0, min(255, v + rng.randint(-amount, amount))) for v in rgb)


def render(scene, size=64):
    """Draw the scene; fills in each object's "box". Deterministic given the scene."""
    rng = random.Random(scene["noise_seed"])
    img = Image.new("RGB", (size, size), _jitter_colour(BACKGROUNDS[scene["bg"]], rng, 10))
    d = ImageDraw.Draw(img)
    cellw = size / 3.0
    for o, (jx, jy) in zip(scene["objects"], scene["jitter"]):
        r, c = cell_rc(o["cell"])
        cx, cy = (c + 0.5) * cellw + jx, (r + 0.5) * cellw + jy
        h = SIZES[o["size"]] * size / 2.0
        box = (int(round(cx - h)), int(round(cy - h)), int(round(cx + h)), int(round(cy + h)))
        fill = _jitter_colour(COLOURS[o["colour"]], rng)
        if o["shape"] == "circle":
            d.ellipse(box, fill=fill)
        elif o["shape"] == "square":
            s = 0.85                                    # squares a bit smaller: same visual area
            b = (int(round(cx - h * s)), int(round(cy - h * s)), int(round(cx + h * s)), int(round(cy + h * s)))
            d.rectangle(b, fill=fill)
            box = b
        else:
            d.polygon([(cx, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill)
        o["box"] = list(box)
    return img


def obj_name(o, size=False):
    return ("%s %s %s" % (o["size"], o["colour"], o["shape"])) if size else "%s %s" % (o["colour"], o["shape"])


def pos_phrase(o):
    return "in the " + POSITIONS[o["cell"]]


CAPTION_STYLES = 3


def caption(scene, style=0):
    """Short captions that name every object with size, colour and position."""
    objs = scene["objects"]
    parts = ["a %s %s" % (obj_name(o, True), pos_phrase(o)) for o in objs]
    if len(parts) == 1:
        listing = parts[0]
    else:
        listing = ", ".join(parts[:-1]) + " and " + parts[-1]
    if style == 0:
        return "%s on a %s background." % (listing[0].upper() + listing[1:], scene["bg"])
    if style == 1:
        return "A %s background with %s." % (scene["bg"], listing)
    n = len(objs)
    return "%s %s on a %s background: %s." % (NUMBERS[n].capitalize(), "object" if n == 1 else "objects",
                                             scene["bg"], listing)


def make_split(split, n, seed):
    rng = random.Random("%s-%d" % (split, seed))
    return [random_scene(rng, split) for _ in range(n)]
