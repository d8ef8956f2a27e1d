# SPDX-License-Identifier: GPL-2.0-only
"""What both parts of the campaign share: the lmig binary, scratch names, processes."""
import os
import re
import select
import signal
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LMIG = os.environ.get("LMIG", os.path.join(HERE, "..", "user", "lmig"))
# Everything with a global name carries this, so parallel runs never collide.
TAG = f"lmig-rel-{os.getpid()}"
SCRATCH = f"/dev/shm/{TAG}"
CPU_V1 = "/sys/fs/cgroup/cpu"
BLKIO_V1 = "/sys/fs/cgroup/blkio"
STATE_DIR = "/run/lmig"


def scratch(name):
    os.makedirs(SCRATCH, exist_ok=True)
    return os.path.join(SCRATCH, name)


# Every process started and not yet reaped: killed if the campaign is interrupted.
LIVE = set()


def kill_all():
    for p in list(LIVE):
        p.kill(signal.SIGCONT)
        p.kill()


class Proc:
    """An lmig process: stderr collected, stdout optional, --ready-fd 3 read back."""

    def __init__(self, args, ready=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 collect_stdout=False, pass_fds=(), line_cb=None):
        r = w = None
        fds = list(pass_fds)
        if ready:
            r, w = os.pipe()
            # --ready-fd names the descriptor the child inherits.
            i = list(args).index("--ready-fd")
            args = list(args[:i + 1]) + [w] + list(args[i + 2:])
        self.args = [LMIG] + [str(a) for a in args]
        if collect_stdout:
            stdout = subprocess.PIPE
        self.err = []
        self.out = b""
        self.line_cb = line_cb
        self.t_exit = None
        # Own process group: a kill never reaches the driver, and stays one pid.
        self.p = subprocess.Popen(self.args, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                                  pass_fds=fds + ([w] if w is not None else []),
                                  start_new_session=True)
        self.pid = self.p.pid
        LIVE.add(self)
        if w is not None:
            os.close(w)
        self.ready_fd = r
        self.te = threading.Thread(target=self._read_err, daemon=True)
        self.te.start()
        self.to = None
        if collect_stdout:
            self.to = threading.Thread(target=self._read_out, daemon=True)
            self.to.start()

    def _read_err(self):
        buf = b""
        while True:
            try:
                b = self.p.stderr.read1(65536)
            except (OSError, ValueError):
                break
            if not b:
                break
            buf += b.replace(b"\r", b"\n")
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                s = line.decode(errors="replace")
                if s.strip():
                    self.err.append(s)
                    if self.line_cb:
                        self.line_cb(s)
        if buf.strip():
            self.err.append(buf.decode(errors="replace"))

    def _read_out(self):
        chunks = []
        while True:
            try:
                b = self.p.stdout.read1(1 << 20)
            except (OSError, ValueError):
                break
            if not b:
                break
            chunks.append(b)
        self.out = b"".join(chunks)

    def port(self, timeout=10):
        """The line lmig wrote to --ready-fd, or None."""
        p = select.poll()
        p.register(self.ready_fd, select.POLLIN)
        if not p.poll(timeout * 1000):
            return None
        s = os.read(self.ready_fd, 256).decode().strip()
        os.close(self.ready_fd)
        self.ready_fd = None
        return s or None

    def wait(self, timeout):
        """Exit code (negative: signal), or None if still running after timeout."""
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self.t_exit is None:
            self.t_exit = time.monotonic()
        self.te.join(2)
        if self.to:
            self.to.join(2)
        return rc

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def reap(self):
        if self.alive():
            self.kill()
        self.p.wait()
        LIVE.discard(self)
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None
        self.te.join(2)
        if self.to:
            self.to.join(2)
        for f in (self.p.stderr, self.p.stdout):
            if f:
                f.close()


def proc_state(pid):
    """The state letter of /proc/PID/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2]


def receiving(pid, out):
    """The receiver holds its image open: OUT.partial, or an unnamed O_TMPFILE
    (/proc/PID/fd/N -> "DIR/#INODE (deleted)") in OUT's directory."""
    if os.path.exists(out + ".partial"):
        return True
    d = os.path.dirname(out) + "/"
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith(d) and t.endswith(" (deleted)"):
            return True
    return False


def leftovers(out):
    """Names a receiver left next to OUT: OUT.partial, or the .OUT.RANDOM name
    a commit over an existing OUT links before its rename."""
    d, b = os.path.split(out)
    try:
        names = os.listdir(d)
    except OSError:
        return []
    return [n for n in names if n == b + ".partial" or n.startswith("." + b + ".")]


def same_file(a, b):
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


def stays_paused(pid, secs=1.0):
    """The process stays stopped (T) for secs; False as soon as it is not."""
    t_end = time.monotonic() + secs
    while time.monotonic() < t_end:
        if proc_state(pid) not in ("T", "t"):
            return False
        time.sleep(0.005)
    return True


def rm(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# A --progress line ("2.5 s  round 4  dirty ..."), not a message.
PROGRESS = re.compile(r"^\d+(\.\d+)? s  ")


def one_line_error(lines, verb):
    """The lines a failing lmig printed: exactly one, naming itself."""
    msgs = [l for l in lines if l.strip() and not PROGRESS.match(l)]
    return len(msgs) == 1 and msgs[0].startswith(f"lmig {verb}")
