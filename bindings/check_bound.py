#!/usr/bin/env python3
"""check_bound.py - every public function of include/llava.h must be bound by
each binding or listed there as deliberately unbound, with a reason.

- Python: declared in PROTOTYPES of bindings/python/llava/_lib.py (argtypes
  and restype) AND called as lib.<name> by the package's modules; or a key
  of UNBOUND in _lib.py.
- Lua: called in bindings/lua/llava.c (outside comments); or listed in its
  header comment as "UNBOUND: llava_name: reason".
Also fails on names a binding uses that the header does not declare.
Exit 0 when everything is covered, 1 otherwise. Run from anywhere.
"""
import os
import re
import sys

SRC = os.environ.get("LLAVA_SRCDIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def read(*parts):
    with open(os.path.join(SRC, *parts), encoding="utf-8") as f:
        return f.read()


def strip_c_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def header_functions():
    text = strip_c_comments(read("include", "llava.h"))
    names = re.findall(r"LLAVA_API\s+[^;{]*?\b(llava_\w+)\s*\(", text)
    return sorted(set(names))


def python_binding():
    lib_py = read("bindings", "python", "llava", "_lib.py")
    table = lib_py[lib_py.index("PROTOTYPES"):lib_py.index("UNBOUND")]
    declared = set(re.findall(r'"(llava_\w+)":\s*\(', table))
    unbound_block = lib_py[lib_py.index("UNBOUND"):]
    unbound_block = unbound_block[: unbound_block.index("}") + 1]
    unbound = dict(re.findall(r'"(llava_\w+)":\s*"([^"]+)"', unbound_block))
    used = set()
    pkg = os.path.join(SRC, "bindings", "python", "llava")
    for fn in os.listdir(pkg):
        if fn.endswith(".py") and fn != "_lib.py":
            with open(os.path.join(pkg, fn), encoding="utf-8") as f:
                used |= set(re.findall(r"\b_?lib\.(llava_\w+)\b", f.read()))
    # a free function is used through Handle._free_name
    for fn in os.listdir(pkg):
        if fn.endswith(".py"):
            with open(os.path.join(pkg, fn), encoding="utf-8") as f:
                used |= set(re.findall(r'_free_name\s*=\s*"(llava_\w+)"', f.read()))
    bound = declared & used
    problems = [f"python: {n} declared in PROTOTYPES but never called" for n in sorted(declared - used)]
    problems += [f"python: {n} called but has no prototype" for n in sorted(used - declared)]
    return bound, unbound, declared | used, problems


def lua_binding():
    src = read("bindings", "lua", "llava.c")
    unbound = dict(re.findall(r"UNBOUND:\s*(llava_\w+):\s*([^\n*]+)", src))
    code = strip_c_comments(src)
    called = set(re.findall(r"\b(llava_\w+)\s*\(", code))
    return called, unbound, called, []


def main():
    api = header_functions()
    if len(api) < 50:
        print(f"check_bound: only {len(api)} functions found in llava.h; the parser is broken")
        return 1
    failures = 0
    failed_bindings = 0
    for name, (bound, unbound, mentioned, problems) in (("python", python_binding()), ("lua", lua_binding())):
        before = failures
        for p in problems:
            print("FAIL", p)
            failures += 1
        for fn in api:
            if fn in bound:
                continue
            if fn in unbound and unbound[fn].strip():
                print(f"note {name}: {fn} deliberately unbound: {unbound[fn].strip()}")
                continue
            print(f"FAIL {name}: {fn} is neither bound nor listed as deliberately unbound")
            failures += 1
        for fn in sorted(mentioned - set(api)):
            print(f"FAIL {name}: uses {fn}, which llava.h does not declare")
            failures += 1
        print(f"{name}: {len(bound & set(api))} of {len(api)} functions bound, "
              f"{len(set(unbound) & set(api))} deliberately unbound")
        failed_bindings += failures > before
    print(f"check_bound: {2 - failed_bindings} passed, {failed_bindings} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
