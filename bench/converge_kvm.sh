#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Convergence under real KVM (make bench): a two-vCPU QEMU guest whose
# writer outruns the link, migrated four ways side by side in one run, as
# bench/converge.sh does under TCG.  The host's /dev/kvm cannot run such a
# guest, so this boots the VM of selftests/vm/run-in-vm.sh (a host thread
# per CPU, svm: nested KVM) once and migrates there, between two QEMUs
# with `-accel kvm` (selftests/vm/qemu-kvm.py: its placement, its
# reference loop and its lines).  Every way goes through `lmig proxy send`
# and `lmig proxy recv` (unix socket, loopback TCP, unix socket), the ways
# of QEMU alone without --qmp: the VM's CPU 0 holds the writing vCPU and
# the whole migration path, and lmig's two processes take CPU from the
# writer (through them a writer at 4x an 8 MB/s link wrote 8.7 MB/s while
# migrating, QEMU to QEMU 31 MB/s), so each way pays the same.
# CONV_KVM_PATH=direct migrates QEMU to QEMU for the ways without lmig.
#
# The guest is selftests/qemu/smp (mkguest.sh --smp, no OS): vCPU 0
# rewrites CONV_KVM_TOUCH MiB at MULT times the link's rate (one word per
# page, in slices every 100 ms, spinning between them), vCPU 1 only
# computes and prints its rate.  The link is QEMU's max-bandwidth,
# CONV_KVM_LINK MB/s, the same for every way; the downtime-limit is
# QEMU's default, 300 ms.  For each MULT of CONV_KVM_MULTS, each case of
# CONV_KVM_CASES, with a fresh source and destination:
#
#   native   nothing turned on; cancelled after CONV_KVM_BOUND s
#   auto     the same with auto-converge (QEMU's default steps: 20 %,
#            +10 % a step, at most 99 %, on every vCPU); CONV_KVM_AC_BOUND s
#   dlimit   QEMU's own dirty limit: both QEMUs with
#            -accel kvm,dirty-ring-size=CONV_KVM_RING and, as the migration
#            starts, set-vcpu-dirty-limit CONV_KVM_DIRTY_LIMIT MB/s on every
#            vCPU (QEMU 7.2 has the command but neither the migration
#            capability dirty-limit nor the parameter vcpu-dirty-limit of
#            8.1, whose default, 1 MB/s, is this one's); CONV_KVM_DL_BOUND s
#   lmig     through `lmig proxy send --qmp` and `lmig proxy recv`
#            (lmig's defaults, plus CONV_KVM_LMIG_ARGS); CONV_KVM_LMIG_BOUND s
#   lmigshort, lmiglong   the same with LMIG_CVM_PERIOD=short or long:
#            the vCPU limits' period rule, to compare them in one run
#            (only when named in CONV_KVM_CASES)
#
# Prints a Markdown table (make bench appends it to bench/results-latest.md):
# finished or not (bounded), QEMU's total time and downtime, the link
# QEMU measured (median of its estimates while active), the writer's
# MB/s before and during the migration (what each way left it), the
# computing vCPU's rate during the migration as a % of before (relative to
# a reference loop that shares its CPU of the VM, and unnormalised), the
# lowest limit lmig applied (% of a CPU, on how many of the vCPU threads),
# how far a cancelled run got; then the PASS/MISS lines of converge.sh's
# targets (lmig converges at every rate; total <= 0.5x auto-converge's
# where that finishes; downtime <= 300 ms; computing vCPU >= 90 %) and, for
# lmig, the last CPU limit seen on the writer's thread before the
# switch-over (quota and period) beside the downtime, and lmig's decisions
# that changed the limit (from its --json report).  Progress on stderr.
#
# Knobs (environment): CONV_KVM_LINK (MB/s, 2), CONV_KVM_MULTS ("1 2 4"),
# CONV_KVM_CASES ("native auto dlimit lmig"; also lmigshort lmiglong),
# CONV_KVM_TOUCH (MiB, 4),
# CONV_KVM_PATH (proxy or direct),
# CONV_KVM_BOUND (s, 20), CONV_KVM_AC_BOUND (s, 90), CONV_KVM_DL_BOUND (s,
# 60), CONV_KVM_LMIG_BOUND (s, 60), CONV_KVM_DIRTY_LIMIT (MB/s, 1),
# CONV_KVM_RING (dirty-ring-size, 4096), CONV_KVM_LMIG_ARGS (""),
# CONV_KVM_KEEP (a file to append each run's JSON line to), LMIG.
# Default run: 12 migrations in one boot of the VM; its time is printed.
#
# Exit status 0 whether the targets are met or not; 1 if a run failed
# (harness error, lmig error, a destination that does not run on, the VM
# hung twice), 4 when there is no VM here.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

# Inside the VM (run-in-vm.sh passes no environment: the knobs come as
# KEY=VALUE arguments, then the cells MULT:CASE).
if [ "${LMIG_VM:-0}" = 1 ]; then
	. "$top/selftests/vm/guest-lib.sh"
	guest="" lmig_bin="" link=2 touch=4 bound=20 ac_bound=90 dl_bound=60 lmig_bound=60
	dlimit=1 ring=4096 lmig_args="" path=--native
	for a in "$@"; do
		case $a in
		guest=*) guest=${a#*=} ;;
		lmig_bin=*) lmig_bin=${a#*=} ;;
		link=*) link=${a#*=} ;;
		touch=*) touch=${a#*=} ;;
		bound=*) bound=${a#*=} ;;
		ac_bound=*) ac_bound=${a#*=} ;;
		dl_bound=*) dl_bound=${a#*=} ;;
		lmig_bound=*) lmig_bound=${a#*=} ;;
		dlimit=*) dlimit=${a#*=} ;;
		ring=*) ring=${a#*=} ;;
		lmig_args=*) lmig_args=${a#*=} ;;
		path=*) path=--${a#*=} ;;
		*=*) echo "cvk error unknown setting $a"; exit 1 ;;
		esac
	done
	# A hang of the VM itself ends it at once (see selftests/vm/qemu-kvm.sh).
	echo 1 >/proc/sys/kernel/softlockup_panic 2>/dev/null || true
	echo 1 >/proc/sys/kernel/panic_on_rcu_stall 2>/dev/null || true
	kvm_load
	# lmig's probes' tracepoints kept on (see selftests/vm/qemu-kvm.sh).
	t=/sys/kernel/tracing
	mounted=0
	[ -e $t/tracing_on ] || ! mount -t tracefs nodev $t 2>/dev/null || mounted=1
	echo 0 >$t/tracing_on 2>/dev/null || true
	for e in sched/sched_switch exceptions/page_fault_user kvm/kvm_exit kvm/kvm_page_fault; do
		echo 1 2>/dev/null >"$t/events/$e/enable" || true
	done
	[ $mounted = 0 ] || umount $t || true
	cg=/sys/fs/cgroup
	if ! grep -q " $cg cgroup2 " /proc/mounts; then
		mount -t cgroup2 none "$cg" || { echo "cvk error cannot mount cgroup2"; exit 1; }
	fi
	echo +cpu >"$cg/cgroup.subtree_control" || { echo "cvk error no cpu controller"; exit 1; }
	w=$cg/convkvm-work
	mkdir "$w" || { echo "cvk error cannot make $w"; exit 1; }
	trap 'rmdir "$w" 2>/dev/null' EXIT
	echo "cvk qemu $(qemu-system-x86_64 --version | head -n 1)"
	echo "cvk kernel $(uname -r); $(dmesg | grep -m 1 -i 'nested paging' | sed 's/^\[[^]]*\] //')"
	for a in "$@"; do
		case $a in
		*=*) continue ;;
		esac
		mult=${a%%:*} cs=${a#*:}
		set -- --guest "$guest" --lmig "$lmig_bin" --cgroup "$w" --tag "cvk-$mult-$cs" \
			--rate $((mult * link)) --bandwidth "$link" --touch "$touch" --downtime 300 \
			--before 5 --after 2 --json /dev/null
		case $cs in
		native) set -- "$@" "$path" --timeout "$bound" ;;
		auto) set -- "$@" "$path" --capability auto-converge --timeout "$ac_bound" ;;
		dlimit) set -- "$@" "$path" --dirty-ring "$ring" --dirty-limit "$dlimit" \
			--timeout "$dl_bound" ;;
		lmig) set -- "$@" --timeout "$lmig_bound" --lmig-args "$lmig_args" ;;
		lmigshort | lmiglong)
			set -- "$@" --timeout "$lmig_bound" --lmig-args "$lmig_args" \
				--lmig-env "LMIG_CVM_PERIOD=${cs#lmig}" ;;
		esac
		echo "cvk start $mult $cs $(cut -d ' ' -f 1 /proc/uptime)" >&2
		out=$(python3 "$top/selftests/vm/qemu-kvm.py" "$@" |
			grep -E "^cvk-[0-9]+-[a-z]+ (json|error) " || true)
		# QEMU's own failure (7.2 with a dirty ring aborted once at
		# start-up) is said and the cell run once more; never lmig's.
		if [ "${cs#lmig}" = "$cs" ] && printf '%s\n' "$out" | grep -q '^cvk-[^ ]* json .*"error"'; then
			printf '%s\n' "$out" | grep " error " | sed "s/^cvk-[^ ]* error /cvk retried ${mult}x $cs: /"
			out=$(python3 "$top/selftests/vm/qemu-kvm.py" "$@" |
				grep -E "^cvk-[0-9]+-[a-z]+ (json|error) " || true)
		fi
		printf '%s\n' "$out"
	done
	exit 0
fi

CONV_KVM_LINK=${CONV_KVM_LINK:-2}
CONV_KVM_MULTS=${CONV_KVM_MULTS:-1 2 4}
CONV_KVM_CASES=${CONV_KVM_CASES:-native auto dlimit lmig}
CONV_KVM_TOUCH=${CONV_KVM_TOUCH:-4}
CONV_KVM_PATH=${CONV_KVM_PATH:-proxy}
CONV_KVM_BOUND=${CONV_KVM_BOUND:-20}
CONV_KVM_AC_BOUND=${CONV_KVM_AC_BOUND:-90}
CONV_KVM_DL_BOUND=${CONV_KVM_DL_BOUND:-60}
CONV_KVM_LMIG_BOUND=${CONV_KVM_LMIG_BOUND:-60}
CONV_KVM_DIRTY_LIMIT=${CONV_KVM_DIRTY_LIMIT:-1}
CONV_KVM_RING=${CONV_KVM_RING:-4096}
CONV_KVM_LMIG_ARGS=${CONV_KVM_LMIG_ARGS:-}
CONV_KVM_KEEP=${CONV_KVM_KEEP:-}
LMIG=${LMIG:-$top/user/lmig}

die() { echo "bench/converge_kvm: $*" >&2; exit 1; }
num() { case $1 in '' | *[!0-9]*) die "$2 must be a whole number, not '$1'" ;; esac; }
for v in CONV_KVM_LINK:"$CONV_KVM_LINK" CONV_KVM_TOUCH:"$CONV_KVM_TOUCH" \
	CONV_KVM_BOUND:"$CONV_KVM_BOUND" CONV_KVM_AC_BOUND:"$CONV_KVM_AC_BOUND" \
	CONV_KVM_DL_BOUND:"$CONV_KVM_DL_BOUND" CONV_KVM_LMIG_BOUND:"$CONV_KVM_LMIG_BOUND" \
	CONV_KVM_DIRTY_LIMIT:"$CONV_KVM_DIRTY_LIMIT" CONV_KVM_RING:"$CONV_KVM_RING"; do
	num "${v#*:}" "${v%%:*}"
done
[ "$CONV_KVM_LINK" -gt 0 ] || die "CONV_KVM_LINK must be above 0"
for m in $CONV_KVM_MULTS; do num "$m" CONV_KVM_MULTS; done
for c in $CONV_KVM_CASES; do
	case $c in native | auto | dlimit | lmig | lmigshort | lmiglong) ;;
	*) die "unknown case '$c' in CONV_KVM_CASES (native auto dlimit lmig lmigshort lmiglong)" ;;
	esac
done
case $CONV_KVM_PATH in
proxy) kvm_path=native ;; direct) kvm_path=direct ;;
*) die "CONV_KVM_PATH must be proxy or direct, not '$CONV_KVM_PATH'" ;;
esac
case $CONV_KVM_LMIG_ARGS in *"'"*) die "CONV_KVM_LMIG_ARGS cannot hold a single quote" ;; esac
[ -x "$LMIG" ] || die "$LMIG not found; run 'make user'"
[ "$(id -u)" = 0 ] || die "the benchmark needs root (the VM loads kvm_amd and limits threads through cgroups)"
elf=$(sh "$top/selftests/qemu/mkguest.sh" --smp) || die "cannot build the two-vCPU guest"

# The VM sees this tree (the host's root, read-only): a private copy of
# lmig there, so a rebuild during the run does not mix two builds.
mkdir -p "$top/selftests/build"
work=$(mktemp -d "$top/selftests/build/convkvm.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cp "$LMIG" "$work/lmig"

cells=""
budget=60
for m in $CONV_KVM_MULTS; do
	for c in $CONV_KVM_CASES; do
		cells="$cells $m:$c"
		case $c in
		native) b=$CONV_KVM_BOUND ;; auto) b=$CONV_KVM_AC_BOUND ;;
		dlimit) b=$CONV_KVM_DL_BOUND ;; lmig*) b=$CONV_KVM_LMIG_BOUND ;;
		esac
		# Start, 5 s before, the bound, lmig's and the destination's ends.
		budget=$((budget + b + 60))
	done
done

started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$(date +%s)
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
: >"$work/results"
notes=""
# One VM for every cell; should it hang (its kernel reports a soft lockup
# or an RCU stall: MTTCG, see selftests/test_qemu_kvm_vm.c), once more for
# the cells it had not done.
for attempt in 1 2; do
	todo=""
	for cell in $cells; do
		grep -q "^cvk-${cell%%:*}-${cell#*:} json " "$work/results" || todo="$todo $cell"
	done
	[ -n "$todo" ] || break
	rc=0
	# shellcheck disable=SC2086
	VM_ACCEL=tcg,thread=multi VM_TIMEOUT=$budget VM_KLOG="$work/klog" \
		sh "$top/selftests/vm/run-in-vm.sh" "$here/converge_kvm.sh" \
		"guest=$elf" "lmig_bin=$work/lmig" "link=$CONV_KVM_LINK" "touch=$CONV_KVM_TOUCH" \
		"bound=$CONV_KVM_BOUND" "ac_bound=$CONV_KVM_AC_BOUND" "dl_bound=$CONV_KVM_DL_BOUND" \
		"lmig_bound=$CONV_KVM_LMIG_BOUND" "dlimit=$CONV_KVM_DIRTY_LIMIT" \
		"ring=$CONV_KVM_RING" "lmig_args=$CONV_KVM_LMIG_ARGS" "path=$kvm_path" $todo \
		>"$work/out" 2>"$work/err" || rc=$?
	[ "$rc" != 4 ] || { cat "$work/err" >&2; exit 4; }
	grep -E "^cvk-[0-9]+-[a-z]+ json " "$work/out" >>"$work/results" || true
	grep -E "^cvk (qemu|kernel) " "$work/out" | sort -u >"$work/about" || true
	grep -E "^cvk retried " "$work/out" >>"$work/retried" || true
	grep -E "^cvk-[0-9]+-[a-z]+ error |^kvm skip|^cvk error" "$work/out" >&2 || true
	[ "$rc" != 0 ] || break
	hang=$(grep -m 1 -E "soft lockup|hard LOCKUP|self-detected stall|detected stalls" \
		"$work/klog" 2>/dev/null || true)
	echo "bench/converge_kvm: the VM ended with $rc: $(tail -n 3 "$work/err" | tr '\n' ' ')" >&2
	[ -n "$hang" ] || break
	notes="$notes- The VM hung (its kernel: \`$hang\`) in attempt $attempt; the cells it had not done ran in a fresh VM.
"
	echo "bench/converge_kvm: the VM itself hung ($hang)" >&2
done
[ -z "$CONV_KVM_KEEP" ] || sed 's/^cvk-[0-9]*-[a-z]* json //' "$work/results" >>"$CONV_KVM_KEEP"

commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null) || commit=unknown
echo "### QEMU convergence under nested KVM, $started"
echo ""
echo "- Machine: Linux $(uname -r), $(nproc) CPUs, load average at start $load0; the VM:" \
	"Debian $(sed -n 's/^cvk kernel //p' "$work/about" | head -n 1), QEMU TCG with a host" \
	"thread per CPU, 2 CPUs, svm"
echo "- Inside: $(sed -n 's/^cvk qemu //p' "$work/about" | head -n 1), \`-accel kvm\`," \
	"guest of selftests/qemu/smp (no OS, 2 vCPUs, 128 MiB): vCPU 0 rewrites" \
	"$CONV_KVM_TOUCH MiB, vCPU 1 only computes; link: QEMU's max-bandwidth" \
	"$CONV_KVM_LINK MB/s over unix sockets; downtime-limit 300 ms (default)"
if [ "$kvm_path" = native ]; then
	echo "- Path: every way through \`lmig proxy send\` and \`lmig proxy recv\` (unix socket," \
		"loopback TCP, unix socket); the ways of QEMU alone without --qmp"
else
	echo "- Path: QEMU to QEMU over a unix socket; lmig through its proxies"
fi
echo "- lmig: \`$("$work/lmig" version | head -n 1)\`, \`lmig proxy send" \
	"--qmp${CONV_KVM_LMIG_ARGS:+ $CONV_KVM_LMIG_ARGS}\`; source tree at commit $commit"
echo "- Bounds: native $CONV_KVM_BOUND s, auto-converge $CONV_KVM_AC_BOUND s, dirty-limit" \
	"$CONV_KVM_DL_BOUND s, lmig $CONV_KVM_LMIG_BOUND s; dirty-limit: dirty-ring-size" \
	"$CONV_KVM_RING, set-vcpu-dirty-limit $CONV_KVM_DIRTY_LIMIT MB/s"
printf '%s' "$notes"
if [ -s "$work/retried" ]; then
	echo "- Run once more after QEMU itself failed (the first attempt's words):"
	sed 's/^cvk retried /  - /' "$work/retried"
fi
echo ""
prc=0
python3 - "$work/results" "$CONV_KVM_LINK" "$cells" <<'EOF' || prc=$?
import json
import sys

link = int(sys.argv[2])
res = {}
with open(sys.argv[1]) as f:
    for ln in f:
        tag, _, js = ln.partition(" json ")
        _, mult, case = tag.split("-")
        res[(int(mult), case)] = json.loads(js)
cells = [(int(c.split(":")[0]), c.split(":")[1]) for c in sys.argv[3].split()]
title = {"native": "native precopy", "auto": "native + auto-converge",
         "dlimit": "QEMU dirty-limit", "lmig": "lmig proxy send --qmp",
         "lmigshort": "lmig --qmp, short periods", "lmiglong": "lmig --qmp, 100 ms periods"}
LMIGS = [c for c in ("lmig", "lmigshort", "lmiglong") if c in [x.split(":")[1]
                                                              for x in sys.argv[3].split()]]
failed = []


def pct(r, during, before):
    return 100.0 * r[during] / r[before] if r.get(before) else None


def compute(r):
    """The computing vCPU's rate during as a % of before: against the
    reference loop on its CPU, and as it is."""
    raw = pct(r, "compute_during", "compute_before")
    ref = pct(r, "ref_during", "ref_before")
    return (raw / ref * 100.0 if raw is not None and ref else None), raw


def lmig_limit(r):
    th = ((r.get("send") or {}).get("throttle")) or {}
    if not th:
        return "-"
    if not th.get("throttled"):
        return "none needed (%s)" % th.get("whom_why", "-")
    return "%.1f %% of a CPU, %d of %d vCPU threads (%s)" % (
        th.get("min_limit_pct", 0), len(th.get("limited", [])),
        len(th.get("vcpu_threads", [])), th.get("whom", "-"))


def ok(r, case):
    if r.get("error"):
        return "harness: " + r["error"]
    if r.get("status") == "completed":
        if not r.get("dst_runs"):
            return "the destination does not run on"
        if case in LMIGS and (r.get("send_rc") != 0 or r.get("recv_rc") != 0):
            return "lmig exit %s/%s" % (r.get("send_rc"), r.get("recv_rc"))
    elif not r.get("bounded"):
        return "status " + str(r.get("status"))
    if case in LMIGS and not ((r.get("send") or {}).get("throttle") or {}).get("restored"):
        return "lmig did not restore the vCPU threads"
    return None


print("| writer | migration | finished | total s | downtime ms | link MB/s | writer MB/s before, "
      "during | computing vCPU (vs reference; as is) | lmig limit | how far, if cancelled |")
print("|---|---|---|---:|---:|---:|---|---|---|---|")
T, D, C = {}, {}, {}
for m, c in cells:
    r = res.get((m, c))
    rate = "%dx link (%d MB/s)" % (m, m * link)
    if r is None or ok(r, c):
        why = "no result" if r is None else ok(r, c)
        failed.append("%dx %s: %s" % (m, c, why))
        print("| %s | %s | FAIL: %s | | | | | | | |" % (rate, title[c], why))
        continue
    done = r.get("status") == "completed"
    cn, craw = compute(r)
    far = "-"
    if not done:
        far = "%d passes, each from the second left at least %.1f MB (%.1f MB fit in 300 ms)" % (
            r.get("passes", 0), (r.get("remaining_min") or 0) / 1e6, link * 0.3)
        if c == "auto":
            far += ", throttle %d %%" % r.get("throttle_pct", 0)
    print("| %s | %s | %s | %s | %s | %.1f | %.1f, %.1f | %s | %s | %s |" % (
        rate, title[c], "yes" if done else "no: not in %.0f s" % r.get("wall_s", 0),
        "%.1f" % (r["total_ms"] / 1000.0) if done else "-",
        r.get("downtime_ms") if done else "-", r.get("link_mbps", 0),
        r.get("writer_mbps_before", 0), r.get("writer_mbps_during", 0),
        "-" if cn is None else "%.0f %%; %.0f %%" % (cn, craw),
        lmig_limit(r) if c in LMIGS else "-", far))
    T[(m, c)] = r["total_ms"] if done else -1
    D[(m, c)] = r.get("downtime_ms") or 0
    C[(m, c)] = cn
print("")


def steps(r):
    """lmig's decisions that changed something: s into its run, the limit
    (% of a CPU) and why; the lifts."""
    th = ((r.get("send") or {}).get("throttle")) or {}
    out, last = [], None
    for st in th.get("steps") or []:
        w = st.get("why")
        if w in ("watching", "converging", "given-up", "off"):
            continue
        key = (st.get("limit_pct"), w)
        if w == "hold" and last and last[0] == key[0]:
            continue
        out.append("%.1f s %s %.1f %%" % (st.get("t_s", 0), w, st.get("limit_pct", 0)))
        last = key
    return ", ".join(out) or "none"


for lc in LMIGS:
    lm = [(m, c) for m, c in cells if c == lc]
    conv = [k for k in lm if T.get(k, -1) >= 0]
    tt, ct = [], []
    for k in lm:
        m = k[0]
        if C.get(k) is not None:
            nat = C.get((m, "native"))
            ct.append("%dx: %.0f %% (%s%s)" % (m, C[k], "PASS" if C[k] >= 90 else "MISS",
                                              "" if nat is None else "; native %.0f %%" % nat))
        if T.get(k, -1) < 0:
            continue
        a = T.get((m, "auto"), None)
        if a is not None and a >= 0:
            tt.append("%dx: %.2fx (%s)" % (m, T[k] / a, "PASS" if T[k] <= 0.5 * a else "MISS"))
        elif (m, "auto") in T:
            tt.append("%dx: auto-converge did not finish (not judged)" % m)
    dt = [("%dx: %d ms (%s)" % (k[0], D[k], "PASS" if D[k] <= 300 else "MISS")) for k in conv]
    print("Targets, %s:" % title[lc])
    print("")
    print("- converges at every rate: %s (%d of %d)" % (
        "PASS" if len(conv) == len(lm) else "MISS", len(conv), len(lm)))
    print("- total time <= 0.5x auto-converge's where it finishes: %s" % (
        "; ".join(tt) or "not judged"))
    print("- downtime <= 300 ms: %s" % ("; ".join(dt) or "not judged (none finished)"))
    print("- computing vCPU >= 90 %% of its rate before: %s" % ("; ".join(ct) or "not measured"))
    print("")
    print("%s: the last limit on the writer's thread before the switch-over (cpu.max quota "
          "period, s into the migration), QEMU's downtime, and the decisions (s into lmig's "
          "run, why, limit):" % title[lc])
    print("")
    for k in lm:
        r = res.get(k) or {}
        last = r.get("last_limit") or {}
        th = ((r.get("send") or {}).get("throttle")) or {}
        print("- %dx: %s; downtime %s ms; limited from %s s, restored at %s s; %s" % (
            k[0], "; ".join("thread %s: %s at %s s" % (t, v[0], v[1]) for t, v in last.items())
            or "no limit seen", r.get("downtime_ms"), th.get("limited_from_s", "-"),
            th.get("restored_at_s", "-"), steps(r)))
    print("")
if failed:
    print("#### FAILED RUNS")
    print("")
    for f in failed:
        print("- " + f)
    print("")
sys.exit(1 if failed else 0)
EOF
echo "Wall time: $(($(date +%s) - t0)) s; load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo ""
exit "$prc"
