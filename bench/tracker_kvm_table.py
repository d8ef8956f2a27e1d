#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The Markdown table of bench/tracker_kvm.sh from the lines of
selftests/vm/tracker-kvm.sh (file or stdin): per backing and tracker, the
paced guest's harvest and the dirty rate reported against the guest's own,
and the flat-out guest's harvest, the pages reported an interval against
those it rewrites, and its write rate tracked against untracked.
Exits 1 when a line says "error" or a tracker that can watch failed."""
import json
import re
import sys


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "-"


def num(v, fmt="%.1f"):
    return fmt % v if isinstance(v, (int, float)) else "-"


def main():
    src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    runs, backing, notes, bad = {}, {}, [], 0
    order = []
    for ln in src:
        ln = ln.rstrip("\n")
        m = re.match(r"trk (\S+) (paced|flat) run (\S+) (\{.*\})$", ln)
        if m:
            b, mode, name, j = m.group(1), m.group(2), m.group(3), json.loads(m.group(4))
            if (b, name) not in order:
                order.append((b, name))
            runs[(b, name, mode)] = j
            continue
        m = re.match(r"trk (\S+) (paced|flat) backing (.*)$", ln)
        if m:
            backing.setdefault(m.group(1), m.group(3))
            continue
        if re.match(r"trk (\S+ )?(error|kmod) ", ln) or ln.startswith("kvm skip") or \
                ln.startswith("run-in-vm"):
            notes.append(ln)
            bad += " error " in ln
    print("| backing | tracker | paced: harvest ms | lmig CPU ms | reported MB/s | guest MB/s "
          "| ratio | flat: harvest ms | lmig CPU ms | pages / interval (guest's) "
          "| guest MB/s tracked | untracked | ratio |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for b, name in order:
        p, f = runs.get((b, name, "paced"), {}), runs.get((b, name, "flat"), {})
        if not p.get("ok") and not f.get("ok"):
            why = (p or f).get("error", "failed")
            why = why.replace("--tracker %s cannot watch this memory: " % name.split(":")[0], "")
            print("| %s | %s | cannot watch: %s |||||||||||" % (b, name, why.replace("|", "/")))
            continue
        # auto: the tracker it picked, and the calibration it went by.
        got = [(m, j["tracker"]) for m, j in (("paced", p), ("flat", f)) if j.get("ok")]
        picked = (got[0][1] if len(set(t for _, t in got)) == 1 else
                  ", ".join("%s %s" % (t, m) for m, t in got))
        cells = [b, "auto: %s" % picked if name == "auto" else name]
        if p.get("ok"):
            cells += [num(p["harvest_ms"]), num(p["harvest_cpu_ms"]), num(p["reported_mbps"], "%.2f"),
                      num(p["guest_mbps"], "%.2f"), ratio(p["reported_mbps"], p["guest_mbps"])]
        else:
            cells += ["failed: %s" % p.get("error", "not run")] + [""] * 4
            bad += bool(p)
        if f.get("ok"):
            pages = f.get("dirty_pages") or [0]
            # What the guest rewrote an interval (and its harvest), at most its ring.
            per = f["guest_mbps"] * 1e6 / 4096 * f.get("tracked_s", 0) / len(pages)
            cells += [num(f["harvest_ms"]), num(f["harvest_cpu_ms"]),
                      "%d (%d)" % (sum(pages) / len(pages), min(per, f["touch_pages"])),
                      num(f["guest_mbps"], "%.0f"), num(f["untracked_mbps"], "%.0f"),
                      ratio(f["guest_mbps"], f["untracked_mbps"])]
        else:
            cells += ["failed: %s" % f.get("error", "not run")] + [""] * 5
            bad += bool(f)
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print("")
    for (b, name, mode), j in sorted(runs.items()):
        if name == "auto" and j.get("tracker_why"):
            print("- %s %s auto: %s" % (b, mode, j["tracker_why"]))
    for b in backing:
        print("- %s: %s" % (b, backing[b]))
    for n in notes:
        print("- " + n)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
