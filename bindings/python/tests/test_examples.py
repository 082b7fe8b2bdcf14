"""examples/python/describe.py prints the golden greedy answer."""
import os
import subprocess
import sys
import unittest

from support import HERE, TINY, data, golden, llava, need

EXAMPLE = os.path.join(HERE, "..", "..", "..", "examples", "python", "describe.py")


class TestDescribe(unittest.TestCase):
    def test_describe_shapes336(self):
        lm_path = data(*TINY, "model-lm.gguf")
        lm = need("llava_load_lm", lambda: llava.LM(lm_path))
        need("llava_load_vision", lambda: llava.Vision(data(*TINY, "model-mmproj.gguf")).close())
        want = lm.detokenize(golden()["chat_greedy32[shapes336.png]"][:12])
        lm.close()
        out = subprocess.run(
            [sys.executable, EXAMPLE, "--model", lm_path, "--mmproj", data(*TINY, "model-mmproj.gguf"),
             "--image", data("images", "shapes336.png"), "--prompt", "What is in the picture?",
             "--template", "llava-1.5", "--max-tokens", "12", "--threads", "2"],
            capture_output=True, env=dict(os.environ), timeout=600)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(out.stdout.decode("utf-8"), want + "\n")

    def test_describe_missing_image(self):
        need("llava_load_image", lambda: llava.Image.load(data("images", "shapes336.png")).close())
        out = subprocess.run([sys.executable, EXAMPLE, "--model", "x", "--mmproj", data(*TINY, "model-mmproj.gguf"),
                              "--image", "/nonexistent/x.png"], capture_output=True, env=dict(os.environ))
        self.assertEqual(out.returncode, 1)
        self.assertIn("describe.py:", out.stderr.decode())


if __name__ == "__main__":
    unittest.main()
