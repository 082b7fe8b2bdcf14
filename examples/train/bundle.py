#!/usr/bin/python3
"""bundle.py - turn a finished training run into the committed demo bundle and the results table.

    bundle.py --run DIR [--dest examples/train/model] [--results examples/train/RESULTS.md]

Writes to DEST: synthworld-lm.gguf, synthworld-mmproj.gguf (the stage-2 model), scene.png (a test
scene the model answers correctly about), testset.png (the test images as one sheet, 10 per row)
answers.json (test questions, their scenes, the PyTorch greedy answers and accuracy), which
test_bundled.py replays through the C library, and demo.txt (the question `make demo` asks about
scene.png, then the scene's caption).
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import instruct  # noqa: E402

KINDS = ["conversation", "detail", "reasoning", "all"]
NAMES = {"stage1": "stage 1 only (projector on captions)", "stage2": "stage 1 + 2 (LLaVA)",
         "text_ref": "text-only reference given the caption"}


def results_md(run, ev, ec, stats):
    t = ev["table"]
    lines = ["# Visual instruction tuning, reproduced small: results", "",
             "Test split: %d scenes, %d questions (each asked alone with its image, greedy decoding); "
             "scenes with held-out colour-shape pairs (green triangle, blue circle): see below. "
             "A rule-based judge checks every stated fact (colour, size, count, position, relation, yes/no) "
             "against the scene; an answer counts as correct when all its facts are true and it states "
             "every fact of the reference answer. Fact precision = true facts / stated facts." % (
                 len({q["scene"] for q in ev["questions"]}), len(ev["questions"])), "",
             "| model | conversation | detailed description | complex reasoning | all | fact precision |",
             "|---|---|---|---|---|---|"]
    for tag in ("stage1", "stage2", "text_ref"):
        r = t[tag]
        lines.append("| %s | %s | %.1f |" % (NAMES[tag], " | ".join("%.1f" % r[k]["acc"] for k in KINDS),
                                             r["all"]["fact_prec"]))
    if ec:
        c = ec["acc_c"]
        lines.append("| stage 1 + 2 through libllava (C) | %s | %.1f |" % (
            " | ".join("%.1f" % c[k]["acc"] for k in KINDS), c["all"]["fact_prec"]))
    lines += ["", "Questions per kind: " + ", ".join("%s %d" % (k, t["stage2"][k]["n"]) for k in KINDS[:3]) + "."]
    held = [q for q in ev["questions"] if q.get("held")]
    if held:
        ok = sum(instruct.judge(q["stage2"], q["ref"], q["scene_facts"])[0] for q in held)
        lines.append("Stage-2 accuracy on questions about scenes with a held-out pair: %.1f%% (%d questions)." % (
            100.0 * ok / len(held), len(held)))
    if ec:
        lines += ["", "C runtime vs PyTorch: %d/%d identical greedy answers (%.1f%%), image embeddings max |diff| "
                  "%.1e; tokenizer: %s." % (ec["identical"], ec["questions"], ec["identical_pct"],
                                           ec["embed_max_abs_diff"],
                                           ("%d corpus texts, %d mismatches" % (ec["tokenizer"]["texts"],
                                                                                ec["tokenizer"]["mismatches"]))
                                           if "tokenizer" in ec else "not checked")]
    if stats:
        lines += ["", "Training (preset %s): " % stats.get("preset", "?") + "; ".join(
            "%s %s" % (k, v) for k, v in stats.items() if k != "preset") + "."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--dest", default=os.path.join(HERE, "model"))
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    a = ap.parse_args()
    with open(os.path.join(a.run, "eval.json")) as f:
        ev = json.load(f)
    with open(os.path.join(a.run, "data.json")) as f:
        data = json.load(f)
    ecp = os.path.join(a.run, "eval_c_stage2.json")
    ec = json.load(open(ecp)) if os.path.exists(ecp) else None
    stats = {}
    for step in ("data", "vocab", "clip", "lm", "stage1", "eval1", "stage2", "export", "eval"):
        p = os.path.join(a.run, "stats_%s.json" % step)
        if os.path.exists(p):
            s = json.load(open(p))
            stats["preset"] = s.pop("preset", "?")
            stats["%s time" % step] = "%.0f s" % s.pop("seconds")
            if "cpu_seconds" in s:
                stats["%s CPU" % step] = "%.0f s" % s.pop("cpu_seconds")
            s.pop("threads", None)
            stats.update({k: round(v, 3) for k, v in s.items()})
    scenes = data["test"]
    from world import HELD_OUT
    for q in ev["questions"]:
        sc = scenes[q["scene"]]
        q["scene_facts"] = {"bg": sc["bg"], "objects": [{k: o[k] for k in ("colour", "shape", "size", "cell")}
                                                        for o in sc["objects"]]}
        q["held"] = any((o["colour"], o["shape"]) in {tuple(h) for h in HELD_OUT} for o in sc["objects"])
    with open(a.results, "w") as f:
        f.write(results_md(a.run, ev, ec, stats))
    os.makedirs(a.dest, exist_ok=True)
    shutil.copy(os.path.join(a.run, "stage2-lm.gguf"), os.path.join(a.dest, "synthworld-lm.gguf"))
    shutil.copy(os.path.join(a.run, "stage2-mmproj.gguf"), os.path.join(a.dest, "synthworld-mmproj.gguf"))
    imgs = np.load(os.path.join(a.run, "images_test.npy"))
    n, s = len(imgs), imgs.shape[1]
    rows = (n + 9) // 10
    sheet = np.zeros((rows * s, 10 * s, 3), np.uint8)
    for i, im in enumerate(imgs):
        sheet[(i // 10) * s:(i // 10 + 1) * s, (i % 10) * s:(i % 10 + 1) * s] = im
    Image.fromarray(sheet).save(os.path.join(a.dest, "testset.png"), optimize=True)
    # the demo: a question the model answers correctly about a scene with several objects, preferring
    # kinds whose answer is not in the question (a description, then a colour, a position, ...)
    pref = ["detail", "colour", "position", "count_colour", "relative", "size", "count_shape", "count"]
    judged = [(q, instruct.judge(q["stage2"], q["ref"], q["scene_facts"])[0]) for q in ev["questions"]]
    pick = max((q for q, ok in judged if ok) or ev["questions"][:1],
               key=lambda q: (len(scenes[q["scene"]]["objects"]) >= 2,
                              -pref.index(q["sub"]) if q["sub"] in pref else -len(pref),
                              len(scenes[q["scene"]]["objects"]), -q["scene"]))
    demo = pick["scene"]
    Image.fromarray(imgs[demo]).save(os.path.join(a.dest, "scene.png"))
    keep = ("scene", "kind", "sub", "q", "ref", "stage2", "stage2_ids", "scene_facts")
    out = {"image_size": s, "per_row": 10, "demo_scene": demo, "caption": scenes[demo]["captions"][0],
           "torch_acc": ev["table"]["stage2"]["all"]["acc"],
           "questions": [{k: q[k] for k in keep} for q in ev["questions"]]}
    with open(os.path.join(a.dest, "answers.json"), "w") as f:
        json.dump(out, f, indent=0)
    with open(os.path.join(a.dest, "demo.txt"), "w") as f:
        f.write("%s\n%s\n" % (pick["q"], scenes[demo]["captions"][0]))
    print("bundle: demo scene %d: %s" % (demo, scenes[demo]["captions"][0]))
    for q in ev["questions"]:
        if q["scene"] == demo:
            print("  Q: %s\n  A: %s\n  judged %s" % (q["q"], q["stage2"],
                                              "correct" if instruct.judge(q["stage2"], q["ref"], q["scene_facts"])[0]
                                              else "wrong"))


if __name__ == "__main__":
    main()
