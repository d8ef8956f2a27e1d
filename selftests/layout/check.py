#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The shape of user/ as a test (make check).

Three rules, the ones Documentation/design.md states:
  - no C source (.c or .h) under user/ is over MAX_FILE lines;
  - no function is over MAX_FUNC lines unless the comment that ends on the
    line right above it carries the marker "Long because:" and says why;
  - a layer includes only headers of the layers it may depend on (LAYERS).

Offenders the tree has not shed yet are named, with their size, in an
allow-list (selftests/layout/allow.txt): an entry holds that one file,
function or include where it is; an entry that grew past its size fails,
and so does one that is no longer needed, so the list only shrinks.

A function is measured from the first line of its definition (the line
its declaration starts on) to its closing brace, both counted, by brace
matching over the text with comments, string and character literals and
preprocessor lines blanked out.

Usage:
  check.py                  the test: self-test on a fixture tree, then
                            the real tree; TAP and kselftest "# Totals:"
  check.py --root DIR [--allow FILE]
                            check the tree DIR (which holds user/); one line
                            a problem, exit 1 if any
  check.py --report [N]     the N (default 15) longest files and functions
                            of user/, to measure before and after a change
"""
import bisect
import os
import re
import shutil
import sys
import tempfile

MAX_FILE = 800
MAX_FUNC = 120
MARKER = "Long because:"

# What each layer may include besides its own headers: the map at the top
# of Documentation/design.md.
LAYERS = {
    "lib": set(),
    "chan": {"lib"},
    "host": {"lib"},
    "live": {"lib", "chan", "host"},
    "image": {"lib", "chan", "live", "host"},
    "stream": {"lib", "chan", "live", "host"},
    "workload": {"lib"},
    "cli": {"lib", "chan", "host", "live", "image", "stream", "workload"},
}

# Headers of a higher layer that a lower one may include: image/image.h
# holds only the types of a send (its options, its report, what it tells
# while it runs), which the pre-copy controller in live/ reads and fills;
# the engine's own state (image_send.h, image_recv.h) stays out of reach.
TYPES_ONLY = {
    "live": {"image/image.h"},
}

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))


def blank(text):
    """text with comments, string/char literals and preprocessor lines
    replaced by spaces (newlines kept, so line numbers hold), and the
    (first, last) line of every comment."""
    out = []
    comments = []
    i, n, line = 0, len(text), 1
    bol = True  # only whitespace since the start of the line
    while i < n:
        c = text[i]
        if c == "\n":
            out.append(c)
            line += 1
            bol = True
            i += 1
            continue
        if bol and c == "#":
            # A directive, with its continuation lines.
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append(" \n")
                    line += 1
                    i += 2
                    continue
                if text.startswith("/*", i):
                    break
                out.append(" ")
                i += 1
            bol = False
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            chunk = text[i:j]
            comments.append((line, line + chunk.count("\n"), chunk))
            out.append(re.sub(r"[^\n]", " ", chunk))
            line += chunk.count("\n")
            i = j
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            comments.append((line, line, text[i:j]))
            out.append(" " * (j - i))
            i = j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
            bol = False
            continue
        if not c.isspace():
            bol = False
        out.append(c)
        i += 1
    return "".join(out), comments


NOT_NAMES = {"__attribute__", "__attribute", "__typeof__", "typeof", "alignas",
             "_Alignas", "__declspec", "sizeof"}


def func_name(head):
    """The name a definition header declares, or None if it is no function
    (struct, enum, initialiser)."""
    h = head.rstrip()
    if not h.endswith(")"):
        return None
    depth = 0
    for m in re.finditer(r"[A-Za-z_]\w*\s*\(|[()]", h):
        tok = m.group(0)
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        else:
            name = re.match(r"[A-Za-z_]\w*", tok).group(0)
            if depth == 0 and name not in NOT_NAMES:
                return name
            depth += 1
    return None


def functions(text):
    """[(name, first line, last line, comment ending right above)] of the
    top-level function definitions in C source text."""
    code, comments = blank(text)
    ends = {}
    for first, last, body in comments:
        ends[last] = body if last not in ends else ends[last] + body
    found = []
    depth = 0
    head_start = 0  # offset where the current top-level statement begins
    start_body = None
    line_of = [0]
    for i, c in enumerate(code):
        if c == "\n":
            line_of.append(i + 1)
    def lineno(off):
        return bisect.bisect_right(line_of, off)

    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                start_body = i
                head = code[head_start:i]
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                raise ValueError("line %d: unbalanced '}'" % lineno(i))
            if depth == 0:
                name = func_name(head)
                if name:
                    s = head_start + (len(head) - len(head.lstrip()))
                    first = lineno(s)
                    # The marker may sit in the comment block that ends on
                    # the line above (several comments in a row count as one).
                    above, ln = "", first - 1
                    while ln in ends:
                        above = ends[ln] + above
                        ln = min(f for f, l, b in comments if l == ln) - 1
                    found.append((name, first, lineno(i), above))
                head_start = i + 1
        elif c == ";" and depth == 0:
            head_start = i + 1
    if depth != 0:
        raise ValueError("unbalanced braces (%d left open)" % depth)
    return found


INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]', re.M)


def resolve(user, rel, quote, hdr):
    """The header an include of rel names, as a path under user/, or None
    when it lies outside (the C library, include/, bpf/'s generated
    headers).  "..." looks beside the including file first; both forms
    then look in user/ itself, which the Makefiles put on the path."""
    tries = [os.path.normpath(os.path.join(os.path.dirname(rel), hdr))] if quote == '"' else []
    tries.append(os.path.normpath(hdr))
    for t in tries:
        if not t.startswith("..") and os.path.isfile(os.path.join(user, t)):
            return t
    # Not there (yet): "layer/x.h" still names its layer.
    if quote == '"' and hdr.split("/", 1)[0] in LAYERS and "/" in hdr:
        return hdr
    return None


def sources(root):
    user = os.path.join(root, "user")
    for d, subdirs, files in os.walk(user):
        subdirs[:] = sorted(s for s in subdirs if s != "build")
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                p = os.path.join(d, f)
                yield os.path.relpath(p, user), p


def measure(root):
    """files {rel: lines}, funcs {rel:name: (lines, marked, first line)},
    includes [(rel, line, header)], errors [text]."""
    files, funcs, includes, errors = {}, {}, [], []
    for rel, path in sources(root):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        files[rel] = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        for m in INCLUDE.finditer(text):
            to = resolve(os.path.join(root, "user"), rel, m.group(1), m.group(2))
            if to:
                includes.append((rel, text.count("\n", 0, m.start()) + 1, m.group(2), to))
        try:
            for name, first, last, above in functions(text):
                # A function defined in two #if branches: the longer one.
                key, m = "%s:%s" % (rel, name), (last - first + 1, MARKER in above, first)
                if key not in funcs or funcs[key][0] < m[0]:
                    funcs[key] = m
        except ValueError as e:
            errors.append("user/%s: cannot measure its functions: %s" % (rel, e))
    return files, funcs, includes, errors


def layer_of(rel):
    top = rel.split("/", 1)[0]
    return top if "/" in rel else None


def read_allow(path):
    """{("file", rel) | ("func", rel:name) | ("include", rel, header): size}"""
    allow = {}
    if not path:
        return allow
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].split()
            if not line:
                continue
            kind = line[0]
            if kind in ("file", "func") and len(line) == 3 and line[2].isdigit():
                allow[(kind, line[1])] = int(line[2])
            elif kind == "include" and len(line) == 3:
                allow[(kind, line[1], line[2])] = 0
            else:
                raise SystemExit("%s:%d: not an allow-list entry: %s" % (path, n, raw.strip()))
    return allow


def check(root, allow_path):
    """Problems of the tree at root, as one line each, by rule:
    {"file": [...], "func": [...], "include": [...], "allow": [...]}"""
    files, funcs, includes, errors = measure(root)
    allow = read_allow(allow_path)
    used = set()
    out = {"file": [], "func": [], "include": list(errors), "allow": []}

    def over(kind, key, size, limit, what):
        if size <= limit:
            return
        held = allow.get((kind, key))
        if held is None:
            out[kind].append(what)
            return
        used.add((kind, key))
        if size > held:
            out[kind].append("%s; the allow-list holds it at %d: it may only shrink"
                             % (what, held))

    for rel, n in sorted(files.items()):
        over("file", rel, n, MAX_FILE,
             "user/%s: %d lines, over %d" % (rel, n, MAX_FILE))
    for key, (n, marked, first) in sorted(funcs.items()):
        if marked:
            continue
        rel, name = key.split(":")
        over("func", key, n, MAX_FUNC,
             "user/%s:%d: %s() is %d lines, over %d, with no \"/* %s ... */\" right above it"
             % (rel, first, name, n, MAX_FUNC, MARKER))
    for rel, ln, hdr, to in includes:
        mine, theirs = layer_of(rel), layer_of(to)
        if mine is None or theirs is None or mine == theirs:
            continue
        if mine not in LAYERS:
            out["include"].append("user/%s: %s/ is not a known layer" % (rel, mine))
        elif theirs not in LAYERS[mine] and to not in TYPES_ONLY.get(mine, ()):
            if ("include", rel, hdr) in allow:
                used.add(("include", rel, hdr))
                continue
            out["include"].append("user/%s:%d: includes \"%s\": %s/ may not depend on %s/"
                                  % (rel, ln, hdr, mine, theirs))
    for key in sorted(set(allow) - used):
        out["allow"].append("%s: allow-list entry %s no longer needed: remove it"
                            % (os.path.basename(allow_path), " ".join(key[:3])))
    return out


def report(root, n):
    files, funcs, _, errors = measure(root)
    for e in errors:
        print(e)
    print("%d C sources under user/, %d lines; %d functions" %
          (len(files), sum(files.values()), len(funcs)))
    print("\nlongest files (limit %d):" % MAX_FILE)
    for rel, lines in sorted(files.items(), key=lambda kv: (-kv[1], kv[0]))[:n]:
        print("  %5d  user/%s%s" % (lines, rel, "  *" if lines > MAX_FILE else ""))
    print("\nlongest functions (limit %d, + marked \"%s\"):" % (MAX_FUNC, MARKER))
    for key, (lines, marked, first) in sorted(funcs.items(), key=lambda kv: (-kv[1][0], kv[0]))[:n]:
        rel, name = key.split(":")
        flag = "  +" if marked else ("  *" if lines > MAX_FUNC else "")
        print("  %5d  user/%s:%d %s()%s" % (lines, rel, first, name, flag))
    over = [k for k, (l, m, f) in funcs.items() if l > MAX_FUNC]
    print("\n%d files over %d lines, %d functions over %d (%d of them marked)" %
          (sum(1 for v in files.values() if v > MAX_FILE), MAX_FILE, len(over), MAX_FUNC,
           sum(1 for k in over if funcs[k][1])))


# ---- the test -----------------------------------------------------------

class Tap:
    def __init__(self):
        self.n = self.passed = self.failed = 0

    def result(self, ok, what, detail=()):
        self.n += 1
        if not ok:
            for d in detail:
                print("# " + d)
        if ok:
            self.passed += 1
            print("ok %d %s" % (self.n, what))
        else:
            self.failed += 1
            print("not ok %d %s" % (self.n, what))


def selftest(t):
    """The checker against selftests/layout/fixture (plus a generated file
    over the limit): each rule must catch what the fixture breaks, name
    the file, and leave alone what it does not."""
    tmp = tempfile.mkdtemp(prefix="lmig-layout.")
    try:
        root = os.path.join(tmp, "tree")
        shutil.copytree(os.path.join(HERE, "fixture"), root)
        with open(os.path.join(root, "user/lib/big.c"), "w") as f:
            f.write("/* A file one line over the limit. */\n")
            for i in range(MAX_FILE):
                f.write("int big_%d;\n" % i)
        _, funcs, _, errors = measure(root)
        t.result(not errors and funcs.get("chan/long.c:tricky", (0,))[0] == 11,
                 "layout self-test: braces in strings, characters, comments and "
                 "macros do not count (tricky() measures 11 lines)",
                 errors + ["tricky(): %s" % (funcs.get("chan/long.c:tricky"),)])
        t.result(funcs.get("chan/long.c:too_long", (0,))[0] == MAX_FUNC + 1
                 and funcs.get("chan/long.c:at_limit", (0,))[0] == MAX_FUNC,
                 "layout self-test: function lengths counted from declaration to closing brace",
                 ["too_long(): %s, at_limit(): %s" % (funcs.get("chan/long.c:too_long"),
                                                      funcs.get("chan/long.c:at_limit"))])

        got = check(root, None)
        want_file = ["user/lib/big.c: %d lines, over %d" % (MAX_FILE + 1, MAX_FILE)]
        t.result(got["file"] == want_file, "layout self-test: a file over %d lines is named"
                 % MAX_FILE, got["file"])
        names = [p.split(": ")[1].split("()")[0] for p in got["func"]]
        t.result(names == ["too_long"] and got["func"][0].startswith("user/chan/long.c:"),
                 "layout self-test: only the long function without \"%s\" is named" % MARKER,
                 got["func"])
        want_inc = ['user/host/h.c:3: includes "../live/t.h": host/ may not depend on live/',
                    'user/host/h.c:4: includes "image/image.h": host/ may not depend on image/',
                    'user/lib/err.c:3: includes "chan/net.h": lib/ may not depend on chan/',
                    'user/workload/w.c:2: includes "image/image.h": workload/ may not depend on image/']
        t.result(got["include"] == want_inc,
                 "layout self-test: includes against the layer map, however written "
                 "(forbidden ones named; allowed ones, system and bpf/ headers not)", got["include"])

        allow = os.path.join(tmp, "allow.txt")
        with open(allow, "w") as f:
            f.write("file lib/big.c %d\n" % (MAX_FILE + 1))
            f.write("func chan/long.c:too_long %d\n" % MAX_FUNC)  # it is one longer
            f.write("include workload/w.c image/image.h\n")
            f.write("file chan/long.c 900\n")  # under the limit already
        got = check(root, allow)
        ok = (got["file"] == [] and len(got["func"]) == 1 and "may only shrink" in got["func"][0]
              and got["include"] == want_inc[:3] and len(got["allow"]) == 1
              and "chan/long.c" in got["allow"][0] and "no longer needed" in got["allow"][0])
        t.result(ok, "layout self-test: the allow-list holds an entry at its size, "
                 "fails one that grew and one no longer needed", sum(got.values(), []))
    finally:
        shutil.rmtree(tmp)


def main():
    args = sys.argv[1:]
    if args and args[0] == "--report":
        report(TOP, int(args[1]) if len(args) > 1 else 15)
        return 0
    if args and args[0] == "--root":
        root = args[1]
        allow = args[3] if len(args) > 3 and args[2] == "--allow" else None
        got = check(root, allow)
        for p in sum(got.values(), []):
            print(p)
        return 1 if any(got.values()) else 0
    if args:
        print(__doc__.split("Usage:")[1], file=sys.stderr)
        return 2

    t = Tap()
    print("TAP version 13")
    print("1..10")
    selftest(t)
    got = check(TOP, os.path.join(HERE, "allow.txt"))
    t.result(not got["file"], "layout: no file under user/ over %d lines "
             "(beyond selftests/layout/allow.txt)" % MAX_FILE, got["file"])
    t.result(not got["func"], "layout: no function over %d lines without \"%s\" "
             "(beyond the allow-list)" % (MAX_FUNC, MARKER), got["func"])
    t.result(not got["include"], "layout: every include follows the layer map "
             "(Documentation/design.md)", got["include"])
    t.result(not got["allow"], "layout: every allow-list entry is still needed", got["allow"])
    print("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0" % (t.passed, t.failed))
    return 0 if t.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
