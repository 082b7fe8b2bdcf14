"""Params, versions and status codes (the parts that need no model)."""
import ctypes
import unittest

from support import llava  # noqa: F401  (sets sys.path)

from llava import LlavaError, Param, Params, Status
from llava._lib import lib

# Defaults as written in include/llava.h (the contract), not read from the library.
HEADER_DEFAULTS = {
    "n_threads": 0, "use_mmap": 1, "n_ctx": 0, "kv_type": 1, "n_batch": 512, "seed": -1,
    "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0,
    "repeat_last_n": 64, "frequency_penalty": 0.0, "presence_penalty": 0.0,
    "image_max_pixels": 1 << 26, "image_exif_orient": 0, "chat_template": 0, "max_tokens": 0,
}
FLOAT_KEYS = {"temperature", "top_p", "min_p", "repeat_penalty", "frequency_penalty", "presence_penalty"}


class TestVersion(unittest.TestCase):
    def test_version(self):
        self.assertEqual(llava.version(), "0.1.0")
        self.assertEqual(llava.version_number(), 100)

    def test_strerror(self):
        self.assertEqual(llava.strerror(99), "unknown status")
        self.assertEqual(llava.strerror(0), "success")
        for code in Status:
            self.assertNotEqual(llava.strerror(code), "unknown status", code)

    def test_errmsg_of_non_handle(self):
        junk = ctypes.create_string_buffer(64)
        self.assertNotEqual(lib.llava_errmsg(ctypes.addressof(junk)), b"")
        self.assertNotEqual(lib.llava_errmsg(None), b"")


class TestParams(unittest.TestCase):
    def test_defaults_match_header(self):
        with Params() as p:
            self.assertEqual(p.as_dict(), HEADER_DEFAULTS)
            for name, value in HEADER_DEFAULTS.items():
                info = llava.param_info(name)
                self.assertEqual(info.type, float if name in FLOAT_KEYS else int, name)
                self.assertEqual(info.default, value, name)
                self.assertLessEqual(info.min, value)
                self.assertGreaterEqual(info.max, value)

    def test_round_trip_every_key_at_its_bounds(self):
        p = Params()
        for name in HEADER_DEFAULTS:
            info = llava.param_info(name)
            for v in (info.min, info.max, (info.min + info.max) / 2):
                v = info.type(v) if info.type is float else int(v)
                p[name] = v
                self.assertEqual(p[name], v, name)

    def test_kwargs_and_friendly_names(self):
        p = Params(threads=3, temperature=0, template="llava-1.5", kv_type="f32", mmap=False, seed=42)
        self.assertEqual(p["n_threads"], 3)
        self.assertEqual(p[Param.TEMPERATURE], 0.0)
        self.assertEqual(p["chat_template"], llava.Template.LLAVA_1_5)
        self.assertEqual(p["kv_type"], 0)
        self.assertEqual(p["use_mmap"], 0)
        self.assertEqual(p[200], 42)

    def test_out_of_bounds_keeps_value(self):
        p = Params(top_p=0.5)
        with self.assertRaises(LlavaError) as cm:
            p["top_p"] = 1.5
        self.assertEqual(cm.exception.code, Status.E_INVALID_ARG)
        self.assertIn("203", cm.exception.message)  # the C message names the key
        self.assertEqual(p["top_p"], 0.5)
        with self.assertRaises(LlavaError) as cm:
            p["use_mmap"] = 2
        self.assertEqual(cm.exception.code, Status.E_INVALID_ARG)
        with self.assertRaises(LlavaError):
            p["temperature"] = float("nan")

    def test_unknown_and_wrong_type(self):
        p = Params()
        with self.assertRaises(LlavaError) as cm:
            p[9999] = 1
        self.assertEqual(cm.exception.code, Status.E_UNSUPPORTED)
        with self.assertRaises(KeyError):
            Params(no_such_option=1)
        with self.assertRaises(TypeError):
            p["top_k"] = 2.5
        with self.assertRaises(ValueError):
            p["chat_template"] = "nope"
        # the C setter of the wrong type: E_INVALID_ARG with a message
        self.assertEqual(lib.llava_set_param_float(p.handle, int(Param.TOP_K), 3.0), Status.E_INVALID_ARG)
        self.assertIn("int", p.handle and lib.llava_errmsg(p.handle).decode())

    def test_copy_is_independent(self):
        a = Params(top_k=5)
        b = a.copy()
        b["top_k"] = 7
        self.assertEqual((a["top_k"], b["top_k"]), (5, 7))

    def test_close_and_context(self):
        with Params() as p:
            pass
        self.assertRaises(ValueError, p.get, "top_k")
        p.close()  # twice is harmless

    def test_callbacks_set_and_clear(self):
        p = Params()
        p.set_progress_callback(lambda f: False)
        p.set_abort_callback(lambda: False)
        p.set_log_callback(lambda level, msg: None)
        p.set_progress_callback(None)
        p.set_abort_callback(None)
        p.set_log_callback(None)


if __name__ == "__main__":
    unittest.main()
