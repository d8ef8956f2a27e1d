#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The man pages and the bash completion against the real lmig (test_man).

  check.py options    every command's (and subcommand's) --help options are
                      in its page's OPTIONS sections and nothing else is
                      there; an option given a value in one is given one in
                      the other; every command has its page, lmig(8) lists
                      every command; the lmig command lines of the pages'
                      examples use only their command's options; bold
                      option names in the text are options of some command;
                      every page named under SEE ALSO exists
  check.py render     `make man` into a temporary directory, then every page
                      through `MANWIDTH=80 man --warnings -l`: no warning,
                      and the sections a page must have
  check.py completion completion/lmig sourced in a real bash, _lmig driven
                      with COMP_WORDS/COMP_CWORD: the commands, exactly each
                      command's options, which take a value, the words of a
                      value against lmig's own refusal of a wrong one, and
                      files, directories and pids where --help says so

Options: --lmig PATH (default: $LMIG, else user/lmig), --pages DIR (the .scd
sources, default Documentation/man), --completion FILE (default
completion/lmig).  Prints one line a problem on stderr and exits 1 if
there is any; 0 and a one-line summary on stdout otherwise.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpopts  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
# Sections every page has (lmig-help(8) has no options to list).
SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "EXAMPLES", "SEE ALSO"]

problems = []


def problem(msg):
    problems.append(msg)
    print(msg, file=sys.stderr)


def page_name(key):
    return "lmig" if not key else "lmig-" + key.split()[0]


# ---------------------------------------------------------------- the pages

class Page:
    """An scdoc source: its option definitions per key, its text, its examples."""

    OPT_TOKEN = re.compile(r"\*(--?[A-Za-z0-9][A-Za-z0-9-]*)\*")

    def __init__(self, path, cmd, subs):
        self.path = path
        self.name = os.path.basename(path)
        self.opts = {}          # key -> {option: has a value}
        self.prose = []         # (line number, text) outside literal blocks
        self.literal = []       # (line number, text) inside them
        self.headings = []
        key = None
        literal = False
        with open(path) as f:
            lines = f.read().split("\n")
        for n, line in enumerate(lines, 1):
            if line.startswith("```"):
                literal = not literal
                continue
            if literal:
                self.literal.append((n, line))
                continue
            self.prose.append((n, line))
            if line.startswith("# "):
                title = line[2:].strip()
                self.headings.append(title)
                key = None
                if "OPTIONS" in title:
                    key = cmd
                    for sub in subs:
                        if re.search(r"\b%s\b" % sub.upper(), title):
                            key = cmd + " " + sub
                    self.opts.setdefault(key, {})
            elif line.startswith("*-") and key is not None:
                names = self.OPT_TOKEN.findall(line.split("  ")[0])
                has_value = bool(re.search(r"\b_[^_]+_", line))
                for name in names:
                    if name in self.opts[key]:
                        problem("%s:%d: %s described twice" % (self.name, n, name))
                    self.opts[key][name] = has_value


def load_pages(pages_dir, keys):
    cmds = {}
    for key in keys:
        if " " in key:
            cmd, sub = key.split()
            cmds.setdefault(cmd, []).append(sub)
        else:
            cmds.setdefault(key, [])
    pages = {}
    for cmd, subs in cmds.items():
        path = os.path.join(pages_dir, page_name(cmd) + ".8.scd")
        if not os.path.exists(path):
            problem("%s: no page for %s" % (path, "lmig " + cmd if cmd else "lmig"))
            continue
        pages[cmd] = Page(path, cmd, subs)
    return pages


def check_options(lmig, pages_dir):
    keys = helpopts.all_keys(lmig)
    pages = load_pages(pages_dir, keys)
    every = set()
    for opts in keys.values():
        every.update(opts)
    for key, help_opts in keys.items():
        cmd = key.split()[0] if key else ""
        page = pages.get(cmd)
        if page is None:
            continue
        if not help_opts and key in ("pipe", "proxy", "qemu"):
            continue        # only the subcommands have options
        where = "lmig %s --help" % key if key else "lmig --help"
        man = page.opts.get(key)
        if man is None:
            if help_opts:
                problem("%s: no OPTIONS section for %s" % (page.name, where[:-7]))
            man = {}
        missing = [o for o in help_opts if o not in man]
        extra = [o for o in man if o not in help_opts]
        if missing:
            problem("%s: missing options that %s lists: %s" % (page.name, where, " ".join(missing)))
        if extra:
            problem("%s: options that %s does not list: %s" % (page.name, where, " ".join(extra)))
        for o in help_opts:
            if o in man and man[o] != bool(help_opts[o]):
                problem("%s: %s %s a value in %s but %s in the page" % (
                    page.name, o, "takes" if help_opts[o] else "takes no", where,
                    "not" if help_opts[o] else "does"))
    for page in pages.values():
        check_text(page, keys, every)
    check_command_list(lmig, pages_dir)
    check_see_also(pages_dir)
    return len(keys)


def check_text(page, keys, every):
    """Bold option names in the text, and lmig command lines of the examples."""
    for n, line in page.prose:
        if line.startswith("*-"):
            continue
        for name in Page.OPT_TOKEN.findall(line):
            if name.startswith("--") and name not in every:
                problem("%s:%d: %s is no option of lmig" % (page.name, n, name))
    # Join continued lines: "lmig send ... \\" and the next.
    text, starts = [], []
    for n, line in page.literal:
        if text and text[-1].endswith("\\\\"):
            text[-1] = text[-1][:-2] + " " + line.strip()
        else:
            text.append(line)
            starts.append(n)
    for n, line in zip(starts, text):
        for m in re.finditer(r"\blmig((?: +(?:-j|--json))*) +([a-z]+)((?: +[^ \"'|;&>]+)*)", line):
            cmd, rest = m.group(2), m.group(3).split()
            key = cmd
            if rest and cmd + " " + rest[0] in keys:
                key = cmd + " " + rest[0]
                rest = rest[1:]
            if key not in keys:
                if cmd not in keys:
                    problem("%s:%d: example runs 'lmig %s', no such command" % (page.name, n, cmd))
                continue
            for word in rest:
                name = word.split("=")[0]
                if re.match(r"^--?[A-Za-z]", name) and name not in keys[key]:
                    problem("%s:%d: example gives 'lmig %s' %s, which it does not take" % (
                        page.name, n, key, name))


def check_command_list(lmig, pages_dir):
    """lmig(8)'s COMMANDS section: one definition line *NAME* a command."""
    path = os.path.join(pages_dir, "lmig.8.scd")
    if not os.path.exists(path):
        return
    listed, on = [], False
    with open(path) as f:
        for line in f:
            if line.startswith("# "):
                on = line.strip() == "# COMMANDS"
            elif on:
                m = re.match(r"^\*([a-z]+)\*", line)
                if m:
                    listed.append(m.group(1))
    cmds = helpopts.commands(lmig)
    if sorted(listed) != sorted(cmds):
        problem("lmig.8.scd: COMMANDS lists %s; lmig --help: %s" % (" ".join(listed),
                                                                    " ".join(cmds)))


def check_see_also(pages_dir):
    have = {f[:-len(".8.scd")] for f in os.listdir(pages_dir) if f.endswith(".8.scd")}
    for f in sorted(os.listdir(pages_dir)):
        if not f.endswith(".scd"):
            continue
        with open(os.path.join(pages_dir, f)) as fh:
            for n, line in enumerate(fh, 1):
                for ref in re.findall(r"\*(lmig(?:-[a-z]+)?)\*\(8\)", line):
                    if ref not in have:
                        problem("%s:%d: %s(8) has no page" % (f, n, ref))


# ----------------------------------------------------------------- rendering

def check_render(pages_dir):
    if not shutil.which("scdoc"):
        problem("scdoc is missing (apt-get install scdoc)")
        return 0
    out = tempfile.mkdtemp(prefix="lmig-r27-man.")
    try:
        srcs = sorted(f for f in os.listdir(pages_dir) if f.endswith(".8.scd"))
        if os.path.abspath(pages_dir) == os.path.join(TOP, "Documentation", "man"):
            # The real target, as the packages build the pages.
            # A make of its own, not a part of whatever make runs this test.
            env = {k: v for k, v in os.environ.items()
                   if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
            p = subprocess.run(["make", "-s", "-C", TOP, "man", "MAN_BUILD=" + out],
                               capture_output=True, text=True, timeout=60, env=env)
            if p.returncode:
                problem("make man: exit %d: %s" % (p.returncode, p.stderr.strip()))
                return 0
        else:
            for src in srcs:
                with open(os.path.join(pages_dir, src)) as i, \
                        open(os.path.join(out, src[:-4]), "w") as o:
                    p = subprocess.run(["scdoc"], stdin=i, stdout=o, stderr=subprocess.PIPE,
                                       text=True)
                if p.returncode:
                    problem("scdoc %s: %s" % (src, p.stderr.strip()))
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
        for src in srcs:
            page = os.path.join(out, src[:-4])
            if not os.path.exists(page):
                problem("%s: not built" % src)
                continue
            p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True,
                               text=True, env=env, timeout=30)
            if p.returncode or p.stderr:
                problem("man -l %s: exit %d: %s" % (src[:-4], p.returncode,
                                                    p.stderr.strip().replace("\n", " | ")))
                continue
            text = re.sub(r".\x08", "", p.stdout)
            heads = re.findall(r"^([A-Z][A-Z ]+)$", text, re.M)
            want = SECTIONS + ([] if src == "lmig-help.8.scd" else ["OPTIONS"])
            for s in want:
                if not any(h == s or (s == "OPTIONS" and "OPTIONS" in h) for h in heads):
                    problem("%s: no %s section" % (src, s))
        return len(srcs)
    finally:
        shutil.rmtree(out, ignore_errors=True)


# ---------------------------------------------------------------- completion

def bash_quote(w):
    return "'" + w.replace("'", "'\\''") + "'"


def complete_all(completion, cases, cwd):
    """COMPREPLY of _lmig for each list of words (the last is being completed)."""
    script = [". %s" % BASH_COMPLETION, ". %s" % bash_quote(completion),
              "comp() { COMP_LINE=$1; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1));"
              " COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _lmig;"
              " printf '%s\\n' \"${COMPREPLY[@]}\"; echo '@@'; }",
              "echo \"pid $$\"; echo '@@'"]
    for words in cases:
        # COMP_WORDS as bash makes them: ':' and '=' (COMP_WORDBREAKS) are
        # words of their own, "--to unix:a" is "--to" "unix" ":" "a".
        line = " ".join(words)
        split = []
        for w in words:
            parts = [x for x in re.split(r"([:=])", w) if x]
            split += parts or [""]
        if words[-1] and words[-1][-1] in ":=":
            split.append("")
        script.append("comp " + " ".join(bash_quote(w) for w in [line] + split))
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(script)],
                       capture_output=True, text=True, cwd=cwd, timeout=60)
    if p.returncode:
        raise ValueError("bash: exit %d: %s" % (p.returncode, p.stderr.strip()))
    if p.stderr:
        problem("bash said: %s" % p.stderr.strip().replace("\n", " | "))
    blocks = p.stdout.split("@@\n")
    pid = blocks[0].split()[1]
    return pid, [[w for w in b.split("\n") if w] for b in blocks[1:len(cases) + 1]]


def refused_words(lmig, key, opt):
    """The words lmig names when it refuses OPT's value, or None if it names none."""
    prefix = {("send", "--freeze"): ["--mem", "/etc/hostname", "--to", "127.0.0.1:9",
                                     "--pid", "1"],
              ("dirtyrate", "--tracker"): ["--mem", "/etc/hostname"],
              ("estimate", "--tracker"): ["--mem", "/etc/hostname", "--bandwidth", "1G"]}
    args = [lmig] + key.split() + prefix.get((key, opt), []) + [opt, "lmig-r27-bogus"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    m = re.search(r"'lmig-r27-bogus' is not (one of [^(\n]*|[^(\n]* or [^(\n]*)", p.stderr)
    if p.returncode != 2 or not m:
        return None
    words = re.split(r", | or ", re.sub(r"^one of ", "", m.group(1).strip()))
    return sorted(w.split(":")[0] + ":" if ":" in w else w for w in words)


def check_completion(lmig, completion):
    if not os.path.exists(BASH_COMPLETION):
        problem("%s is missing (apt-get install bash-completion)" % BASH_COMPLETION)
        return 0
    keys = helpopts.all_keys(lmig)
    cmds = helpopts.commands(lmig)
    work = tempfile.mkdtemp(prefix="lmig-r27-comp.")
    try:
        return drive_completion(lmig, completion, keys, cmds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def words_of(key):
    return ["lmig"] + (key.split() if key else [])


# Long because: one list of cases built, run in one bash, and read back in order.
def drive_completion(lmig, completion, keys, cmds, work):
    os.mkdir(os.path.join(work, "adir"))
    open(os.path.join(work, "afile"), "w").close()
    cases, expect = [], []

    def case(words, check):
        cases.append(words)
        expect.append(check)

    def exactly(want, what):
        def check(got):
            if sorted(got) != sorted(want):
                miss = sorted(set(want) - set(got))
                more = sorted(set(got) - set(want))
                problem("completion of %s: missing %s; not wanted %s" % (
                    what, " ".join(miss) or "none", " ".join(more) or "none"))
        return check

    case(["lmig", ""], exactly(cmds, "'lmig <TAB>'"))
    case(["lmig", "-j", ""], exactly(cmds, "'lmig -j <TAB>'"))
    case(["lmig", "help", ""], exactly(cmds, "'lmig help <TAB>'"))
    for key, opts in keys.items():
        refused = {}
        if key in ("pipe", "proxy", "qemu"):
            subs = [k.split()[1] for k in keys if k.startswith(key + " ")]
            case(words_of(key) + [""], exactly(subs, "'lmig %s <TAB>'" % key))
            continue
        line = " ".join(words_of(key))
        longs = [o for o in opts if o.startswith("--")]
        case(words_of(key) + ["-"], exactly(list(opts), "'%s -<TAB>'" % line))
        case(words_of(key) + ["--"], exactly(longs, "'%s --<TAB>'" % line))
        for o, value in opts.items():
            # After a flag come options again; after an option that takes a
            # value, its value (and '-' starts no value of any option here).
            want = [] if value else list(opts)
            case(words_of(key) + [o, "-"],
                 exactly(want, "'%s %s -<TAB>' (%s)" % (line, o, "its value" if value else
                                                       "a flag: options again")))
            if not value:
                continue
            if re.search(r"PATH|FILE|SOCKET", value) and value != "unix:PATH|tcp:HOST:PORT":
                case(words_of(key) + [o, ""], lambda got, o=o, line=line: "afile" in got or
                     problem("completion of '%s %s <TAB>': no file among %s" % (line, o, got)))
            elif value == "DIR":
                case(words_of(key) + [o, ""], lambda got, o=o, line=line:
                     ("adir" in got and "afile" not in got) or
                     problem("completion of '%s %s <TAB>': not the directories: %s" % (line, o,
                                                                                   got)))
            elif value == "PID":
                case(words_of(key) + [o, ""], ("pid", key, o))
            # A short option's words are its long option's: ask lmig once.
            long = helpopts.ALIASES.get(key, {}).get(o, o)
            if long not in refused:
                refused[long] = refused_words(lmig, key, long)
            words = refused[long]
            if words is not None:
                case(words_of(key) + [o, ""], exactly(words, "'%s %s <TAB>' (the words lmig %s "
                                                      "takes)" % (line, o, key)))
            elif value == value.lower() and "|" in value:
                case(words_of(key) + [o, ""], exactly(value.split("|"), "'%s %s <TAB>'" % (
                    line, o)))
    # The QEMU side of a proxy (its --help: unix:PATH|tcp:HOST:PORT), a
    # freezer cgroup's directory, lmig dirty's memfd:.
    case(["lmig", "proxy", "send", "--listen", ""], exactly(["unix:", "tcp:"],
                                                            "'lmig proxy send --listen <TAB>'"))
    # (Bash puts back only what follows the ':'.)
    case(["lmig", "proxy", "recv", "--to", "unix:a"], exactly(["adir", "afile"],
                                                              "'lmig proxy recv --to unix:a'"))
    case(["lmig", "send", "--freeze", "cgroup:a"], exactly(["adir"],
                                                           "'lmig send --freeze cgroup:a'"))
    case(["lmig", "dirty", "--mem", "m"], exactly(["memfd:"], "'lmig dirty --mem m'"))
    # --opt=value: bash splits at '='; _init_completion -s takes it apart.
    case(["lmig", "send", "--compress=l"], exactly(["lz4"], "'lmig send --compress=l'"))
    pid, got = complete_all(completion, cases, work)
    for check, reply in zip(expect, got):
        if isinstance(check, tuple):
            if pid not in reply:
                problem("completion of 'lmig %s %s <TAB>': bash's own pid %s not offered" % (
                    check[1], check[2], pid))
        else:
            check(reply)
    return len(cases)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["options", "render", "completion"])
    ap.add_argument("--lmig", default=os.environ.get("LMIG") or os.path.join(TOP, "user", "lmig"))
    ap.add_argument("--pages", default=os.path.join(TOP, "Documentation", "man"))
    ap.add_argument("--completion", default=os.path.join(TOP, "completion", "lmig"))
    a = ap.parse_args()
    try:
        if a.what == "options":
            n = check_options(a.lmig, a.pages)
            what = "commands and subcommands against their pages"
        elif a.what == "render":
            n = check_render(a.pages)
            what = "pages built and rendered"
        else:
            n = check_completion(a.lmig, a.completion)
            what = "completions checked"
    except (ValueError, OSError, subprocess.SubprocessError) as e:
        problem(str(e))
    if problems:
        return 1
    print("%d %s" % (n, what))
    return 0


if __name__ == "__main__":
    sys.exit(main())
