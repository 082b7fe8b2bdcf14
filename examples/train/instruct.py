"""instruct.py - the rule-based, seeded stand-in for GPT-4: instruction data from a scene's
objects and boxes, in LLaVA's three kinds (conversation, detailed description, complex
reasoning) plus the brief-description prompts stage 1 samples from; and the rule-based
judge that checks every fact an answer states (colour, size, count, position, relation,
yes/no) against the scene.

A sample is {"kind": ..., "turns": [(question, answer), ...]}.
"""
import random
import re

from world import COLOURS, NUMBERS, POSITIONS, SHAPES, caption, cell_rc, obj_name, pos_phrase

BRIEF_PROMPTS = [
    "Describe the image briefly.", "Give a short caption for the image.",
    "Summarize the picture in a few words.", "What does the image show? Answer briefly.",
    "Write a brief description of the image.", "Provide a short description of this picture.",
]
DETAIL_PROMPTS = [
    "Describe the image in detail.", "Give a detailed description of the picture.",
    "What is in this image? Describe every object.", "Explain what you see in the image in detail.",
    "Describe all the objects in the picture and where they are.",
]


def _count_sentence(n, what):
    if n == 0:
        return "There are no %ss." % what
    if n == 1:
        return "There is one %s." % what
    return "There are %s %ss." % (NUMBERS[n], what)


def _unique(objs, key, val):
    m = [o for o in objs if o[key] == val]
    return m[0] if len(m) == 1 else None


# ---------------------------------------------------------------- conversation questions
def q_colour(rng, sc):
    objs = sc["objects"]
    shapes = [s for s in SHAPES if _unique(objs, "shape", s)]
    if not shapes:
        return None
    o = _unique(objs, "shape", rng.choice(shapes))
    q = rng.choice(["What colour is the %s?", "What is the colour of the %s?", "Which colour does the %s have?"])
    return q % o["shape"], "The %s is %s." % (o["shape"], o["colour"])


def q_count_all(rng, sc):
    q = rng.choice(["How many objects are there?", "How many objects are in the image?",
                    "Count the objects in the picture."])
    return q, _count_sentence(len(sc["objects"]), "object")


def q_count_colour(rng, sc):
    c = rng.choice(list(COLOURS)) if rng.random() < 0.4 else rng.choice(sc["objects"])["colour"]
    n = sum(o["colour"] == c for o in sc["objects"])
    q = rng.choice(["How many %s objects are there?", "How many %s objects can you see?"]) % c
    return q, _count_sentence(n, c + " object")


def q_count_shape(rng, sc):
    s = rng.choice(SHAPES)
    n = sum(o["shape"] == s for o in sc["objects"])
    q = rng.choice(["How many %ss are there?", "How many %ss are in the image?"]) % s
    return q, _count_sentence(n, s)


def q_position(rng, sc):
    o = rng.choice(sc["objects"])
    q = rng.choice(["Where is the %s?", "Where is the %s located?", "In which part of the image is the %s?"])
    return q % obj_name(o), "The %s is %s." % (obj_name(o), pos_phrase(o))


def q_exist(rng, sc):
    objs = sc["objects"]
    if rng.random() < 0.5:
        o = rng.choice(objs)
        c, s = o["colour"], o["shape"]
    else:
        c, s = rng.choice(list(COLOURS)), rng.choice(SHAPES)
    q = rng.choice(["Is there a %s %s in the image?", "Can you see a %s %s?", "Does the picture contain a %s %s?"])
    m = [o for o in objs if o["colour"] == c and o["shape"] == s]
    if m:
        return q % (c, s), "Yes, there is a %s %s %s." % (c, s, pos_phrase(m[0]))
    return q % (c, s), "No, there is no %s %s." % (c, s)


def _relation(a, b, axis):
    ra, ca = cell_rc(a["cell"])
    rb, cb = cell_rc(b["cell"])
    if axis == "h":
        return None if ca == cb else ("to the left of" if ca < cb else "to the right of")
    return None if ra == rb else ("above" if ra < rb else "below")


def q_relative(rng, sc):
    objs = sc["objects"]
    if len(objs) < 2:
        return None
    a, b = rng.sample(objs, 2)
    axis = rng.choice("hv")
    rel = _relation(a, b, axis)
    if rel is None:
        axis = "v" if axis == "h" else "h"
        rel = _relation(a, b, axis)
    asked = rng.choice(["to the left of", "to the right of"] if axis == "h" else ["above", "below"])
    q = "Is the %s %s the %s?" % (obj_name(a), asked, obj_name(b))
    if asked == rel:
        return q, "Yes, the %s is %s the %s." % (obj_name(a), rel, obj_name(b))
    return q, "No, the %s is %s the %s." % (obj_name(a), rel, obj_name(b))


def q_size(rng, sc):
    o = rng.choice(sc["objects"])
    q = rng.choice(["Is the %s small or large?", "What size is the %s?"]) % obj_name(o)
    return q, "The %s is %s." % (obj_name(o), o["size"])


CONV_QUESTIONS = {"colour": q_colour, "count": q_count_all, "count_colour": q_count_colour,
                  "count_shape": q_count_shape, "position": q_position, "exist": q_exist,
                  "relative": q_relative, "size": q_size}


# ---------------------------------------------------------------- descriptions and reasoning
def detailed(sc):
    objs = sc["objects"]
    n = len(objs)
    s = ["The image shows %s %s on a %s background." % (NUMBERS[n], "object" if n == 1 else "objects", sc["bg"])]
    for o in objs:
        s.append("There is a %s %s." % (obj_name(o, True), pos_phrase(o)))
    return " ".join(s)


def r_top(rng, sc):
    objs = sc["objects"]
    side = rng.choice(["top", "bottom", "left", "right"])
    key = {"top": lambda o: cell_rc(o["cell"])[0], "bottom": lambda o: -cell_rc(o["cell"])[0],
           "left": lambda o: cell_rc(o["cell"])[1], "right": lambda o: -cell_rc(o["cell"])[1]}[side]
    best = min(key(o) for o in objs)
    m = [o for o in objs if key(o) == best]
    if len(m) != 1 or len(objs) < 2:
        return None
    o = m[0]
    q = rng.choice(["Which object is closest to the %s of the image? Explain your answer.",
                    "Which object is nearest to the %s edge? Explain why."]) % side
    return q, "The %s is %s, and every other object is farther from the %s, so the %s is closest to the %s." % (
        obj_name(o), pos_phrase(o), side, obj_name(o), side)


def r_remove(rng, sc):
    objs = sc["objects"]
    o = rng.choice(objs)
    n = len(objs)
    q = rng.choice(["If the %s were removed, how many objects would be left? Explain.",
                    "How many objects remain if we take away the %s? Explain your reasoning."]) % obj_name(o)
    left = "no objects would be left" if n == 1 else (
        "one object would be left" if n == 2 else "%s objects would be left" % NUMBERS[n - 1])
    return q, "%s After removing the %s, %s." % (_count_sentence(n, "object"), obj_name(o), left)


def r_same_colour(rng, sc):
    objs = sc["objects"]
    if len(objs) < 2:
        return None
    q = rng.choice(["Do all the objects have the same colour? Explain.",
                    "Are all the objects the same colour? Explain your answer."])
    cols = {o["colour"] for o in objs}
    listing = " and ".join("a " + obj_name(o) for o in objs)
    if len(cols) == 1:
        return q, "Yes, all %s objects are %s: %s." % (NUMBERS[len(objs)], objs[0]["colour"], listing)
    return q, "No, the image has objects of different colours: %s." % listing


REASONING = {"extreme": r_top, "remove": r_remove, "same_colour": r_same_colour}


def conversation(rng, sc, n_turns):
    turns, seen = [], set()
    for _ in range(20):
        if len(turns) >= n_turns:
            break
        name = rng.choice(list(CONV_QUESTIONS))
        qa = CONV_QUESTIONS[name](rng, sc)
        if qa and qa[0] not in seen:
            seen.add(qa[0])
            turns.append(qa + (name,))
    return turns


def reasoning(rng, sc):
    for _ in range(20):
        name = rng.choice(list(REASONING))
        qa = REASONING[name](rng, sc)
        if qa:
            return qa + (name,)
    return REASONING["remove"](rng, sc) + ("remove",)


def instruct_samples(sc, seed):
    """The instruction data of one scene: one multi-turn conversation, one detailed
    description, one complex-reasoning question (LLaVA-Instruct's three kinds)."""
    rng = random.Random(seed)
    return [
        {"kind": "conversation", "turns": conversation(rng, sc, rng.randint(1, 3))},
        {"kind": "detail", "turns": [(rng.choice(DETAIL_PROMPTS), detailed(sc), "detail")]},
        {"kind": "reasoning", "turns": [reasoning(rng, sc)]},
    ]


def brief_sample(sc, seed):
    rng = random.Random(seed)
    return {"kind": "brief", "turns": [(rng.choice(BRIEF_PROMPTS), caption(sc, rng.randrange(3)), "brief")]}


# ---------------------------------------------------------------- judge
_C = "|".join(COLOURS)
_S = "|".join(SHAPES)
_P = "|".join(sorted(POSITIONS, key=len, reverse=True))
_N = "|".join(NUMBERS)
RX_OBJ_POS = re.compile(r"\b(?:(small|large) )?(%s) (%s) (?:is )?in the (%s)\b" % (_C, _S, _P))
RX_OBJ = re.compile(r"\b(?:(small|large) )?(%s) (%s)s?\b" % (_C, _S))
RX_SHAPE_COLOUR = re.compile(r"\bthe (%s) is (%s)\b" % (_S, _C))
RX_COUNT = re.compile(r"\bthere (?:is|are) (%s) (?:(%s) )?(objects?|%s|circles|squares|triangles)\b" % (_N, _C, _S))
RX_SHOWS = re.compile(r"\bshows (%s) objects?\b" % _N)
RX_LEFT = re.compile(r"\b(%s|one) objects? would be left\b" % _N)
RX_REL = re.compile(r"\b(%s) (%s) is (to the left of|to the right of|above|below) the (%s) (%s)\b" % (_C, _S, _C, _S))
RX_SIZE = re.compile(r"\b(%s) (%s) is (small|large)\b" % (_C, _S))
RX_ALL = re.compile(r"\ball (%s) objects are (%s)\b" % (_N, _C))
RX_NEGEX = re.compile(r"\bthere is no (%s) (%s)\b" % (_C, _S))


def claims(text):
    """The facts an answer states, as hashable tuples."""
    t = text.lower()
    out = set()
    for m in RX_OBJ_POS.finditer(t):
        out.add(("at", m.group(2), m.group(3), m.group(4)))
    for m in RX_OBJ.finditer(t):
        if not RX_NEGEX.search(t[max(0, m.start() - 12):m.end()]):
            out.add(("obj", m.group(2), m.group(3)) + ((m.group(1),) if m.group(1) else ()))
    for m in RX_SHAPE_COLOUR.finditer(t):
        out.add(("shape_colour", m.group(1), m.group(2)))
    for m in RX_COUNT.finditer(t):
        what = m.group(3).rstrip("s") if m.group(3) not in ("objects", "object") else "object"
        out.add(("count", m.group(2) or "", what, m.group(1)))
    for m in RX_SHOWS.finditer(t):
        out.add(("count", "", "object", m.group(1)))
    for m in RX_LEFT.finditer(t):
        out.add(("left", m.group(1)))
    for m in RX_REL.finditer(t):
        out.add(("rel",) + m.groups())
    for m in RX_SIZE.finditer(t):
        out.add(("size",) + m.groups())
    for m in RX_ALL.finditer(t):
        out.add(("all",) + m.groups())
    for m in RX_NEGEX.finditer(t):
        out.add(("absent",) + m.groups())
    if t.startswith("yes"):
        out.add(("yes",))
    if t.startswith("no,") or t.startswith("no "):
        out.add(("no",))
    return out


def true_in_scene(c, sc):
    objs = sc["objects"]
    find = lambda col, sh: [o for o in objs if o["colour"] == col and o["shape"] == sh]  # noqa: E731
    k = c[0]
    if k == "at":
        m = find(c[1], c[2])
        return bool(m) and POSITIONS[m[0]["cell"]] == c[3]
    if k == "obj":
        m = find(c[1], c[2])
        return bool(m) and (len(c) < 4 or m[0]["size"] == c[3])
    if k == "shape_colour":
        return any(o["shape"] == c[1] and o["colour"] == c[2] for o in objs)
    if k == "count":
        n = sum((not c[1] or o["colour"] == c[1]) and (c[2] == "object" or o["shape"] == c[2]) for o in objs)
        return NUMBERS[n] == c[3]
    if k == "left":
        return NUMBERS[len(objs) - 1] == c[1] or (c[1] == "one" and len(objs) == 2)
    if k == "rel":
        a, b = find(c[1], c[2]), find(c[4], c[5])
        if not a or not b:
            return False
        ra, ca = cell_rc(a[0]["cell"])
        rb, cb = cell_rc(b[0]["cell"])
        return {"to the left of": ca < cb, "to the right of": ca > cb, "above": ra < rb, "below": ra > rb}[c[3]]
    if k == "size":
        m = find(c[1], c[2])
        return bool(m) and m[0]["size"] == c[3]
    if k == "all":
        return NUMBERS[len(objs)] == c[1] and all(o["colour"] == c[2] for o in objs)
    if k == "absent":
        return not find(c[1], c[2])
    return True                      # yes/no: checked against the reference answer below


def judge(answer, reference, sc):
    """1 if every fact the answer states is true in the scene and it states every fact of the
    reference answer (including its yes/no); else 0. Also returns (n_true, n_stated)."""
    got, want = claims(answer), claims(reference)
    n_true = sum(true_in_scene(c, sc) for c in got)
    ok = n_true == len(got) and want <= got
    return int(ok), n_true, len(got)


# ---------------------------------------------------------------- text-only reference
RX_CAPTION_OBJ = re.compile(r"\b(small|large) (%s) (%s) in the (%s)\b" % (_C, _S, _P))
RX_CAPTION_BG = re.compile(r"\b(white|gray|black) background\b")


def scene_from_caption(text):
    """What a text-only model knows: the scene as read back from its caption."""
    objs = [{"size": m.group(1), "colour": m.group(2), "shape": m.group(3), "cell": POSITIONS.index(m.group(4))}
            for m in RX_CAPTION_OBJ.finditer(text.lower())]
    bg = RX_CAPTION_BG.search(text.lower())
    objs.sort(key=lambda o: o["cell"])
    return {"bg": bg.group(1) if bg else "gray", "objects": objs}
