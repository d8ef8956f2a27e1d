#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Where each vCPU of a running test VM is, through QEMU's human monitor.

    vcpus.py MONITOR-SOCKET KALLSYMS

run-in-vm.sh runs this just before its time limit ends a VM whose script
has not finished.  For each vCPU it prints one line:

    cpu N rip SYMBOL+OFF cpl C if=0|1 hlt=0|1 stack SYM SYM ...

RIP and the kernel text addresses found in the 64 words above RSP, named
from KALLSYMS: the text symbols of the guest's /proc/kallsyms, which a
first boot of that kernel saved (the guest boots with nokaslr, so they
hold for every boot).  if is the interrupt flag, hlt whether the vCPU
waits in HLT.
A guest frozen in its kernel (every thread, the time-limit dump of init
too) shows here where its CPUs spin.
"""
import bisect
import re
import socket
import sys
import time


def load_map(path):
    addrs, names = [], []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[1] in "tTwW":
                    addrs.append(int(parts[0], 16))
                    names.append(parts[2])
    except OSError:
        pass
    order = sorted(range(len(addrs)), key=addrs.__getitem__)
    return [addrs[i] for i in order], [names[i] for i in order]


def name(addrs, names, a):
    i = bisect.bisect_right(addrs, a) - 1
    # Past a function's end (data, module memory) the nearest symbol lies.
    if i < 0 or a - addrs[i] > 0x10000:
        return None
    return "%s+0x%x" % (names[i], a - addrs[i])


class Monitor:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(5)
        self.s.connect(path)
        self.read_prompt()

    def read_prompt(self):
        buf = b""
        end = time.monotonic() + 5
        while not buf.endswith(b"(qemu) ") and time.monotonic() < end:
            chunk = self.s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", buf.decode(errors="replace"))

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        return self.read_prompt()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: vcpus.py MONITOR-SOCKET KALLSYMS")
    addrs, names = load_map(sys.argv[2])
    lo = addrs[0] if addrs else 0
    hi = addrs[-1] if addrs else 0
    m = Monitor(sys.argv[1])
    cpus = re.findall(r"CPU #(\d+)", m.cmd("info cpus"))
    for n in cpus:
        m.cmd("cpu " + n)
        regs = m.cmd("info registers")
        rip = re.search(r"RIP=([0-9a-f]+)", regs)
        rsp = re.search(r"RSP=([0-9a-f]+)", regs)
        cpl = re.search(r"CPL=(\d)", regs)
        efl = re.search(r"RFL=([0-9a-f]+)", regs)
        hlt = re.search(r"HLT=(\d)", regs)
        if not rip or not rsp:
            print("cpu %s registers unreadable" % n)
            continue
        r = int(rip.group(1), 16)
        words = []
        for a in re.findall(r":\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)",
                            m.cmd("x /64gx 0x" + rsp.group(1))):
            words += [int(w, 16) for w in a]
        stack = [name(addrs, names, w) for w in words if lo <= w <= hi]
        print("cpu %s rip %s cpl %s if=%d hlt=%s stack %s" % (
            n, name(addrs, names, r) or hex(r), cpl.group(1) if cpl else "?",
            (int(efl.group(1), 16) >> 9) & 1 if efl else -1,
            hlt.group(1) if hlt else "?",
            " ".join(s for s in stack if s) or "-"))


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        print("cpu ? monitor unreachable: %s" % e)
