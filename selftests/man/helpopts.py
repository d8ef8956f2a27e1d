# SPDX-License-Identifier: GPL-2.0-only
"""What `lmig ... --help` says: the commands, their subcommands, and the
options of each with whether they take a value.

An option line of --help starts with a little indentation and a dash:

  -c, --channels N        TCP connections ...
      --fill, --no-fill   write every page ...
  -c, --channels N, -z, --compress MODE, --zerocopy MODE, --timeout S

Its options are the dash words from the start of the line up to the first
one that is neither followed by a comma nor by a value separated by one
space (the value is the word right after the option, one space apart;
more spaces begin the description).  A short option followed by a comma
("-m, --mem PATH") is the long one's other name and takes a value when it
does.
"""
import re
import subprocess

OPT_LINE = re.compile(r"^ {1,8}-")
DASH = re.compile(r"^(--?[A-Za-z0-9][A-Za-z0-9-]*)(,?)$")


def run_help(lmig, words):
    """stdout of `lmig WORDS... --help` (exit 0 and nothing on stderr, else ValueError)."""
    p = subprocess.run([lmig] + words + ["--help"], capture_output=True, text=True,
                       timeout=10)
    if p.returncode != 0 or p.stderr:
        raise ValueError("lmig %s --help: exit %d: %s" % (" ".join(words), p.returncode,
                                                          p.stderr.strip()))
    return p.stdout


def help_of_help(lmig):
    p = subprocess.run([lmig, "help", "help"], capture_output=True, text=True, timeout=10)
    if p.returncode != 0 or p.stderr:
        raise ValueError("lmig help help: exit %d: %s" % (p.returncode, p.stderr.strip()))
    return p.stdout


def parse_options(text, aliases=None):
    """{option: its value's name in --help, or None} of one --help text;
    aliases, if given, gets {short option: its long option}."""
    opts = {}
    for line in text.splitlines():
        if not OPT_LINE.match(line):
            continue
        # Tokens with the whitespace before each, to tell one space from a gap.
        toks = re.findall(r"(\s*)(\S+)", line)
        shorts = []	# "-m," waiting for its long option's value
        i = 0
        while i < len(toks):
            m = DASH.match(toks[i][1])
            if not m:
                break
            name, comma = m.group(1), m.group(2)
            value = None
            if not comma and i + 1 < len(toks) and toks[i + 1][0] == " " \
                    and not toks[i + 1][1].startswith("-"):
                i += 1
                value = toks[i][1].rstrip(",")
                comma = "," if toks[i][1].endswith(",") else ""
            opts[name] = value
            i += 1
            if name.startswith("--") or not comma:
                for short in shorts:
                    opts[short] = value
                    if aliases is not None and name.startswith("--"):
                        aliases[short] = name
                shorts = []
            else:
                shorts.append(name)
            if not comma:
                break
    return opts


def commands(lmig):
    """The command names listed under "Commands:" of `lmig --help`."""
    text = run_help(lmig, [])
    out, on = [], False
    for line in text.splitlines():
        if line.startswith("Commands:"):
            on = True
        elif on and re.match(r"^  [a-z]", line):
            out.append(line.split()[0])
        elif on and line.strip() == "":
            if out:
                break
    return out


def subcommands(text, cmd):
    """The words W of "Usage: lmig CMD W ..." lines (pipe send, pipe recv)."""
    subs = []
    for m in re.finditer(r"^Usage: lmig %s ([a-z]+)\b" % re.escape(cmd), text, re.M):
        if m.group(1) not in subs:
            subs.append(m.group(1))
    return subs


# {key: {short option: long option}}, filled by all_keys().
ALIASES = {}


def all_keys(lmig):
    """{key: {option: value name or None}}: "" for lmig itself, "send", "pipe send", ..."""
    keys = {"": parse_options(run_help(lmig, []), ALIASES.setdefault("", {}))}
    for cmd in commands(lmig):
        # `lmig help --help` is lmig's own usage; help's is `lmig help help`.
        text = run_help(lmig, [cmd]) if cmd != "help" else help_of_help(lmig)
        subs = subcommands(text, cmd)
        if not subs:
            keys[cmd] = parse_options(text, ALIASES.setdefault(cmd, {}))
            continue
        keys[cmd] = {}
        for sub in subs:
            key = cmd + " " + sub
            keys[key] = parse_options(run_help(lmig, [cmd, sub]), ALIASES.setdefault(key, {}))
    return keys


if __name__ == "__main__":
    import sys
    for k, v in all_keys(sys.argv[1]).items():
        print("%-12s args: %s" % (k or "lmig", " ".join(o + "=" + v[o] for o in v if v[o])))
        print("%-12s flags: %s" % ("", " ".join(o for o in v if not v[o])))
