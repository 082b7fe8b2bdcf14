"""LM, sessions, images, embeddings and the chat helper against the golden
tiny-dev outputs of an independent PyTorch implementation. Tests skip while
the C side reports E_UNSUPPORTED (not implemented yet)."""
import array
import gc
import os
import tempfile
import unittest

from support import TINY, data, golden, llava, need, rss_bytes

from llava import Embedding, Image, LlavaError, Status

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None
try:
    from PIL import Image as PILImage
except ImportError:  # pragma: no cover
    PILImage = None


def lm_path():
    return data(*TINY, "model-lm.gguf")


def mmproj_path():
    return data(*TINY, "model-mmproj.gguf")


def golden_embedding(name):
    with open(data(*TINY, name + ".embd.f32"), "rb") as f:
        raw = f.read()
    floats = array.array("f")
    floats.frombytes(raw)
    return floats


class TestErrors(unittest.TestCase):
    def test_missing_model_file(self):
        missing = os.path.join(tempfile.gettempdir(), "no-such-dir-llava", "model.gguf")
        with self.assertRaises(LlavaError) as cm:
            need("llava_load_lm", lambda: llava.LM(missing))
        self.assertEqual(cm.exception.code, Status.E_IO)
        self.assertEqual(cm.exception.code, 3)
        # the detailed message (errbuf), not just the generic status text
        self.assertTrue(cm.exception.message)
        self.assertNotEqual(cm.exception.message, llava.strerror(Status.E_IO))

    def test_missing_mmproj_and_image(self):
        missing = os.path.join(tempfile.gettempdir(), "no-such-dir-llava", "x.gguf")
        with self.assertRaises(LlavaError) as cm:
            need("llava_load_vision", lambda: llava.Vision(missing))
        self.assertEqual(cm.exception.code, Status.E_IO)
        with self.assertRaises(LlavaError) as cm:
            need("llava_load_image", lambda: Image.load(missing + ".png"))
        self.assertIn(cm.exception.code, (Status.E_IO, Status.E_IMAGE))

    def test_not_a_gguf(self):
        with self.assertRaises(LlavaError) as cm:
            # GGUF v3 announcing 5 metadata entries, then nothing: truncated
            blob = b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (5).to_bytes(8, "little")
            need("llava_load_lm_from_memory", lambda: llava.LM.from_memory(blob + bytes(8)))
        self.assertEqual(cm.exception.code, Status.E_FORMAT)


class TestLM(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.g = golden()
        cls.lm = need("llava_load_lm", lambda: llava.LM(lm_path(), threads=2))

    @classmethod
    def tearDownClass(cls):
        cls.lm.close()

    def test_facts(self):
        self.assertEqual(self.lm.n_vocab, 32000)
        self.assertEqual(self.lm.n_embd, 128)
        self.assertEqual(self.lm.bos, 1)
        self.assertEqual(self.lm.eos, 2)
        self.assertIsNone(self.lm.meta("no.such.key"))
        self.assertIsInstance(self.lm.meta("general.architecture"), str)

    def test_tokenize(self):
        self.assertEqual(self.lm.tokenize("The capital of France is"), self.g["text_prompt_ids"])
        self.assertEqual(self.lm.tokenize("\nWhat is in the picture? ASSISTANT:", add_bos=False),
                         self.g["chat_suffix_ids"])
        self.assertEqual(self.lm.detokenize(self.g["text_prompt_ids"][1:]).strip(), "The capital of France is")

    def test_greedy_text_and_logits(self):
        with self.lm.session(temperature=0) as s:
            s.eval(self.g["text_prompt_ids"])
            self.assertEqual(s.position, len(self.g["text_prompt_ids"]))
            ref = array.array("f")
            with open(data(*TINY, "text_prompt.logits0.f32"), "rb") as f:
                ref.frombytes(f.read())
            got = s.logits()
            self.assertEqual(len(got), 32000)
            # max|a - ref| / max|ref|, the bound of the C tests for an F16 KV cache
            rel = max(abs(a - b) for a, b in zip(got, ref)) / max(abs(b) for b in ref)
            self.assertLess(rel, 1e-3)
            ids = []
            for _ in range(32):
                t = s.sample()
                ids.append(t)
                s.eval([t])
            self.assertEqual(ids, self.g["text_greedy32"])

    def test_state_save_load_and_rewind(self):
        with self.lm.session(temperature=0) as s:
            s.eval(self.g["text_prompt_ids"])
            state = s.save_state()
            first = []
            for _ in range(4):
                first.append(s.sample())
                s.eval(first[-1])
            s.load_state(state)
            again = []
            for _ in range(4):
                again.append(s.sample())
                s.eval(again[-1])
            self.assertEqual(first, again)
            self.assertEqual(first, self.g["text_greedy32"][:4])
            s.rewind(0)
            self.assertEqual(s.position, 0)
            self.assertIsNone(s.logits())
            with self.assertRaises(LlavaError) as cm:
                s.sample()
            self.assertEqual(cm.exception.code, Status.E_STATE)
            with self.assertRaises(LlavaError) as cm:
                s.load_state(b"garbage" * 10)
            self.assertIn(cm.exception.code, (Status.E_FORMAT, Status.E_MISMATCH))

    def test_chat_with_golden_embedding(self):
        """The chat helper reproduces chat_greedy32 from the reference embedding."""
        emb = need("llava_new_embed", lambda: Embedding.from_floats(golden_embedding("shapes336.png"), 576, 128))
        with llava.Chat(self.lm, temperature=0, template="llava-1.5", max_tokens=32) as chat:
            chat.add_image(emb).add_text("What is in the picture?")
            ids = [t.id for t in chat.tokens()]
            self.assertEqual(ids, self.g["chat_greedy32[shapes336.png]"])
            self.assertEqual(chat.session.position, 35 + 576 + 13 + 32)


class TestImageAndEmbedding(unittest.TestCase):
    def test_png_pixels_match_pillow(self):
        if PILImage is None or np is None:
            self.skipTest("needs Pillow and numpy")
        path = data("images", "shapes336.png")
        with need("llava_load_image", lambda: Image.open(path)) as img:
            ref = np.asarray(PILImage.open(path).convert("RGB"))
            self.assertEqual(img.size, (336, 336))
            self.assertTrue((img.to_numpy() == ref).all())
            with open(path, "rb") as f:
                encoded = f.read()
            with Image.open(encoded) as img2:
                self.assertEqual(img2.rgb, img.rgb)
            with Image.open(PILImage.open(path)) as img3:
                self.assertEqual(img3.rgb, img.rgb)

    def test_raw_pixel_formats(self):
        if np is None:
            self.skipTest("needs numpy")
        rng = np.random.default_rng(1)
        rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
        alpha = rng.integers(0, 256, (5, 7, 1), dtype=np.uint8)
        rgba = np.concatenate([rgb, alpha], axis=2)
        bgra = np.concatenate([rgb[:, :, ::-1], alpha], axis=2)
        with need("llava_new_image_from_pixels", lambda: Image.from_array(rgb)) as a:
            self.assertTrue((a.to_numpy() == rgb).all())
        with Image.from_array(rgba) as b:
            self.assertTrue((b.to_numpy() == rgb).all())
        with Image.from_array(bgra, format="BGRA") as c:
            self.assertTrue((c.to_numpy() == rgb).all())
        flipped = np.ascontiguousarray(rgb[::-1])
        with Image.from_pixels(flipped.tobytes(), 7, 5, "RGB", bottom_up=True) as d:
            self.assertTrue((d.to_numpy() == rgb).all())
        padded = np.zeros((5, 9, 3), dtype=np.uint8)
        padded[:, :7] = rgb
        with Image.from_array(padded[:, :7]) as e:  # rows 27 bytes apart, used in place
            self.assertTrue((e.to_numpy() == rgb).all())
        with Image.from_array(rgb[:, :, 0]) as gray:
            self.assertTrue((gray.to_numpy() == rgb[:, :, :1]).all())

    def test_corrupt_image(self):
        with self.assertRaises(LlavaError) as cm:
            need("llava_new_image_from_bytes", lambda: Image.from_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10))
        self.assertEqual(cm.exception.code, Status.E_IMAGE)
        self.assertTrue(cm.exception.message)

    def test_embedding_round_trip(self):
        ref = golden_embedding("shapes336.png")
        emb = need("llava_new_embed", lambda: Embedding.from_floats(ref, 576, 128))
        self.assertEqual((emb.n_tokens, emb.n_embd), (576, 128))
        self.assertEqual(emb.data.shape, (576, 128))
        self.assertEqual(emb.to_array(), ref)
        blob = emb.to_bytes()
        with Embedding.from_bytes(blob) as e2:
            self.assertEqual(e2.to_array(), ref)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "e.llava-embd")
            emb.save(path)
            with Embedding.load(path) as e3:
                self.assertEqual(e3.to_array(), ref)
        with self.assertRaises(LlavaError) as cm:
            Embedding.from_bytes(blob[: len(blob) // 2])
        self.assertEqual(cm.exception.code, Status.E_FORMAT)
        data_view = emb.data
        emb.close()
        self.assertEqual(data_view[3, 5], ref[3 * 128 + 5])  # the view outlives the handle
        if np is not None:
            with Embedding.from_floats(np.frombuffer(ref.tobytes(), np.float32).reshape(576, 128)) as e4:
                self.assertTrue((e4.to_numpy().ravel() == np.frombuffer(ref.tobytes(), np.float32)).all())


class TestGoldenChat(unittest.TestCase):
    """shapes336.png -> vision -> projector -> chat: chat_greedy32."""

    def test_chat_greedy32_shapes336(self):
        g = golden()
        vision = need("llava_load_vision", lambda: llava.Vision(mmproj_path(), threads=2))
        proj = need("llava_load_projector", lambda: llava.Projector(mmproj_path()))
        img = need("llava_load_image", lambda: Image.open(data("images", "shapes336.png")))
        lm = need("llava_load_lm", lambda: llava.LM(lm_path(), threads=2))
        with vision, proj, img, lm:
            self.assertEqual((vision.image_size, vision.n_tokens, proj.n_embd), (336, 576, 128))
            # LLaVA-1.5: (336/14)^2 tokens whatever the size; 0 for a size < 1
            self.assertEqual(vision.n_tokens_for(proj, 640, 488), 576)
            self.assertEqual(vision.n_tokens_for(proj, 0, 488), 0)
            emb = need("llava_encode_image", lambda: vision.encode(img, proj, threads=2))
            ref = golden_embedding("shapes336.png")
            self.assertLess(max(abs(a - b) for a, b in zip(emb.to_array(), ref)), 1e-3)
            chat = llava.Chat(lm, temperature=0, template="llava-1.5", max_tokens=32)
            self.assertEqual(chat.template, llava.Template.LLAVA_1_5)
            chat.add_image(emb)
            chat.add_text("What is in the picture?")
            pieces, ids = [], []
            for tok in chat.tokens():
                ids.append(tok.id)
                pieces.append(tok.text)
            self.assertEqual(ids, g["chat_greedy32[shapes336.png]"])
            self.assertEqual("".join(pieces), lm.detokenize(ids))
            self.assertTrue(chat.step().done)  # max_tokens reached


class TestCallbacks(unittest.TestCase):
    def test_progress_abort_and_exceptions(self):
        need("llava_load_lm", lambda: llava.LM(lm_path()).close())
        seen = []
        p = llava.Params(threads=1)
        p.set_progress_callback(lambda f: seen.append(f))
        with llava.LM(lm_path(), p) as lm, lm.session(p, n_ctx=64) as s:
            s.eval([1, 450, 7483])
            if not seen:
                self.skipTest("this libllava reports no progress")
            self.assertTrue(all(0.0 <= f <= 1.0 for f in seen), seen)
            s.set_params(p)
            aborting = llava.Params()
            aborting.set_abort_callback(lambda: True)
            s.set_params(aborting)
            before = s.position
            with self.assertRaises(LlavaError) as cm:
                s.eval([338, 263])
            self.assertEqual(cm.exception.code, Status.E_ABORTED)
            self.assertEqual(s.position, before)

            class Stop(Exception):
                pass

            def boom():
                raise Stop("from the callback")
            raising = llava.Params()
            raising.set_abort_callback(boom)
            s.set_params(raising)
            with self.assertRaises(Stop):  # the callback's own exception comes out
                s.eval([338, 263])
            self.assertEqual(s.position, before)


class TestNoLeaks(unittest.TestCase):
    def test_load_free_loop_rss(self):
        """Load/free the LM (copied, not mapped, so a leak shows in RSS) with a
        session and a chat many times: RSS must not grow."""
        path = lm_path()
        need("llava_load_lm", lambda: llava.LM(path).close())

        def once():
            with llava.LM(path, use_mmap=False, threads=1) as lm:
                with lm.session(n_ctx=256) as s:
                    s.eval([1, 450, 7483])
                    s.sample()
                chat = llava.Chat(lm, n_ctx=256, max_tokens=2)
                chat.add_text("hi")
                list(chat.generate())
                chat.close()
            gc.collect()

        if "asan" in os.environ.get("LD_PRELOAD", "") or "ASAN_OPTIONS" in os.environ:
            self.skipTest("AddressSanitizer's quarantine keeps freed memory resident (LeakSanitizer checks leaks)")
        for _ in range(5):  # warm up the allocator
            once()
        before = rss_bytes()
        for _ in range(40):
            once()
        grown = rss_bytes() - before
        # one leaked LM copy alone is > 8 MB (32000 x 128 F16 embeddings)
        self.assertLess(grown, 4 << 20, f"RSS grew by {grown} bytes over 40 loads")


if __name__ == "__main__":
    unittest.main()
