"""Shared helpers of the binding tests: data paths, golden ids, skips."""
from __future__ import annotations

import os
import sys
import unittest
from typing import Callable, Dict, List, TypeVar

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bindings/python, so `import llava` works uninstalled

import llava  # noqa: E402

T = TypeVar("T")


def data_dir() -> str:
    d = os.environ.get("LLAVA_TEST_DATA") or os.path.join(HERE, "..", "..", "..", "..", "shared", "data")
    return os.path.abspath(d)


def data(*parts: str) -> str:
    path = os.path.join(data_dir(), *parts)
    if not os.path.exists(path):
        raise unittest.SkipTest(f"test data {path} not found (set LLAVA_TEST_DATA)")
    return path


TINY = ("golden", "tiny-dev")


def golden() -> Dict[str, List[int]]:
    """golden.txt as name -> list of ids (text lines kept as strings)."""
    out: Dict[str, List[int]] = {}
    with open(data(*TINY, "golden.txt")) as f:
        for line in f:
            if line.startswith("#") or ":" not in line:
                continue
            name, value = line.split(":", 1)
            try:
                out[name.strip()] = [int(v) for v in value.strip().split(",")]
            except ValueError:
                pass
    return out


def need(what: str, fn: Callable[[], T]) -> T:
    """Run fn; skip the test while the C side reports E_UNSUPPORTED (a part
    of libllava that is not implemented yet)."""
    try:
        return fn()
    except llava.LlavaError as e:
        if e.code == llava.Status.E_UNSUPPORTED:
            raise unittest.SkipTest(f"{what} not implemented in this libllava yet ({e.message})")
        raise


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
