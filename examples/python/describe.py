#!/usr/bin/env python3
"""describe.py - ask a LLaVA model about a picture, printing the answer as
it is generated.

    python3 describe.py --model model-lm.gguf --mmproj mmproj.gguf \\
        --image cat.jpg --prompt "What is in the picture?"

Uses the `llava` Python package (pip install ./bindings/python, or run from
the source tree) and libllava (set LLAVA_LIBRARY to its full path if it is
not installed).
"""
import argparse
import os
import sys
import time

try:
    import llava
except ImportError:  # run from the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
    import llava


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", required=True, help="language model GGUF file")
    ap.add_argument("--mmproj", required=True, help="vision encoder + projector GGUF file")
    ap.add_argument("--image", required=True, help="PNG or JPEG file")
    ap.add_argument("--prompt", default="Describe the picture.", help="the question")
    ap.add_argument("--system", default=None, help="replace the template's system prompt")
    ap.add_argument("--template", default="auto", choices=["auto", "llava-1.5", "mistral", "chatml"])
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    ap.add_argument("--seed", type=int, default=-1)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--n-ctx", type=int, default=0, help="0 = the model's training context")
    ap.add_argument("--verbose", action="store_true", help="timings and log messages on stderr")
    args = ap.parse_args(argv)

    params = llava.Params(threads=args.threads, temperature=args.temperature, seed=args.seed,
                          max_tokens=args.max_tokens, n_ctx=args.n_ctx, template=args.template)
    if args.verbose:
        params.set_log_callback(lambda level, msg: print(f"[llava {level}] {msg}", file=sys.stderr))
    t0 = time.perf_counter()
    try:
        with llava.Vision(args.mmproj, params) as vision, llava.Projector(args.mmproj, params) as proj, \
                llava.Image.open(args.image) as image, llava.LM(args.model, params) as lm:
            t1 = time.perf_counter()
            with vision.encode(image, proj, params) as emb:
                t2 = time.perf_counter()
                with llava.Chat(lm, params) as chat:
                    if args.system is not None:
                        chat.set_system(args.system)
                    chat.add_image(emb)
                    chat.add_text(args.prompt)
                    n = 0
                    for piece in chat.generate():
                        n += 1
                        sys.stdout.write(piece)
                        sys.stdout.flush()
                    sys.stdout.write("\n")
            t3 = time.perf_counter()
    except llava.LlavaError as e:
        print(f"describe.py: {e}", file=sys.stderr)
        return 1
    if args.verbose:
        print(f"load {t1 - t0:.2f}s, encode {t2 - t1:.2f}s, prompt + {n} tokens {t3 - t2:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
