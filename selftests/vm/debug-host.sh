#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host (`make vmcheck-debug`): lmig.ko under a debug kernel.
# Builds or reuses the kernel of debug-kernel.sh (KASAN, lockdep,
# DEBUG_VM, atomic-sleep checks), builds lmig.ko against its tree, and
# boots it (run-in-vm.sh) once per run:
#
#   canary     selftests/vm/canary/lmig_canary.ko, which reads past a slab
#              object and takes two mutexes in both orders: KASAN and
#              lockdep must report it, or the scan below cannot be trusted
#   kmod:NAME  kmod.sh with selftests/kmod/NAME.c (every test_lmig_*.c):
#              the module's own selftests, insmod to rmmod
#   live       live.sh's kmod cases (every kmod* case it has): live
#              migrations with --tracker kmod (4 KiB and 2 MiB shmem folios,
#              churn, holes, madvise, pwrite, short-lived mappings)
#   kvm        kvm.sh ko= downtime=5000: a nested KVM guest's RAM harvested
#              and migrated through the module (only the module's lines
#              count: no BTF here for the soft-dirty tracker's mapping watch)
#
# Every other run's kernel console log (selftests/build/debug/kernel-RUN.log) is
# scanned for what the checkers print: KASAN and UBSAN reports, lockdep
# splats, "BUG:", "WARNING:", sleeping in atomic context, hung tasks,
# lockups and RCU stalls, general protection faults, list and object
# debugging reports.  Any of them, or a failed test, fails the whole.
# Prints each run's result and the first lines of each report, then one
# summary line; exits 0 when everything is clean, 1 when not, 4 (one line
# on stderr) when the kernel cannot be built here.
#
# DEBUG_VM_TIMEOUT (default 1200) is each boot's limit in seconds.
#
# Usage: debug-host.sh [RUN...]   (default: every run)
#        debug-host.sh --scan LOG  (scan one console log: exit 1 if it has reports)
set -u

. "$(dirname "$0")/host-lib.sh"
out=$repo/selftests/build/debug
limit=${DEBUG_VM_TIMEOUT:-1200}
t0=$(date +%s)

say() {
	echo "vmcheck-debug: $*"
}

# scan LOG: print every checker's report in it (its first lines) and
# exit 1 if there was one (in a pipe: its own status).
scan() {
	tr -d '\r' <"$1" | awk -v run="$2" '
	BEGIN { last = -100 }
	function flush() {
		if (!n)
			return
		printf "# %s: kernel report%s:\n", run, lmig ? " (lmig in its trace)" : ""
		for (i = 1; i <= n; i++)
			printf "#   %s\n", buf[i]
		n = 0
		lmig = 0
	}
	/BUG:|WARNING:|UBSAN:|Oops|general protection|kernel BUG at|Kernel panic|INFO: task .* blocked|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|sleeping function called from invalid context|soft lockup|hard LOCKUP|rcu: INFO|detected stall|ODEBUG:|list_add corruption|list_del corruption|refcount_t:|stack-protector|stack guard page/ {
		# A match right after another is the same report ("list_add
		# corruption" and its WARNING line).
		if (NR - last > 3) {
			flush()
			reports++
			left = 14
		}
		last = NR
	}
	left > 0 {
		buf[++n] = $0
		if ($0 ~ /\[lmig\]|lmig_/)
			lmig = 1
		left--
		if (!left)
			flush()
		next
	}
	END { flush(); exit reports ? 1 : 0 }'
}

# --scan LOG: only the scan of one console log (what a run does after it).
if [ "${1:-}" = --scan ]; then
	[ $# = 2 ] && [ -r "$2" ] || { say "--scan needs a readable log file"; exit 2; }
	scan "$2" "${2##*/}"
	exit
fi

rc=0
built=$(sh "$here/debug-kernel.sh") || rc=$?
case $rc in
0) ;;
4) exit 4 ;;
*) say "FAIL: cannot build the debug kernel"; exit 1 ;;
esac
set -- $built "$@"
kernel=$1 kver=$2 kdir=$3 kmoddir=$4
shift 4
tbuild=$(($(date +%s) - t0))
mkdir -p "$out"

kodir=$out/kmod
if ! host_build_ko "$kodir" "$kdir"; then
	sed 's/^/# /' "$kodir/build.log"
	say "FAIL: cannot build lmig.ko against $kdir"
	exit 1
fi
ko=$kodir/lmig.ko
candir=$out/canary
mkdir -p "$candir"
cp "$here"/canary/lmig_canary.c "$here"/canary/Makefile "$candir"/
if ! make -s -C "$candir" KDIR="$kdir" >"$candir/build.log" 2>&1; then
	sed 's/^/# /' "$candir/build.log"
	say "FAIL: cannot build lmig_canary.ko against $kdir"
	exit 1
fi

# The programs the runs need.
progs=""
for c in "$repo"/selftests/kmod/test_lmig_*.c; do
	[ -e "$c" ] || continue
	p=${c##*/}
	progs="$progs ${p%.c}"
done
targets="build/kvm_vmm build/kvm_harvest"
for p in $progs; do
	targets="$targets build/kmod/$p"
done
# shellcheck disable=SC2086
if ! make -s -C "$repo/selftests" $targets >"$out/tests-build.log" 2>&1; then
	sed 's/^/# /' "$out/tests-build.log"
	say "FAIL: cannot build the test programs ($targets)"
	exit 1
fi

runs="$*"
if [ -z "$runs" ]; then
	for p in $progs; do
		runs="$runs kmod:$p"
	done
	runs="canary $runs live kvm"
fi

failed=""
reports=0
log_lines=0


for r in $runs; do
	klog=$out/kernel-${r#kmod:}.log
	rm -f "$klog" "$out/$r.out"
	ts=$(date +%s)
	case $r in
	canary)
		# The guest's script: insmod must fail (the module refuses to
		# stay), having made its reports.
		printf '%s\n' '! insmod "$1" 2>/dev/null' >"$out/canary.sh"
		KERNEL=$kernel KVER=$kver KMODDIR=$kmoddir VM_KLOG=$klog VM_TIMEOUT=$limit \
			sh "$here/run-in-vm.sh" -v "$out/canary.sh" "$candir/lmig_canary.ko" \
			>"$out/canary.out" 2>&1
		st=$?
		found=$(scan "$klog" canary)
		kasan=$(printf '%s\n' "$found" | grep -c 'BUG: KASAN: slab-out-of-bounds in canary_init')
		lockdep=$(printf '%s\n' "$found" | grep -c 'WARNING: possible circular locking dependency')
		res="KASAN $kasan, lockdep $lockdep report(s) of the canary's bugs"
		if [ "$st" = 0 ] && [ "$kasan" = 1 ] && [ "$lockdep" = 1 ]; then
			say "ok canary: $res; $(($(date +%s) - ts)) s"
		else
			sed 's/^/# canary: /' "$out/canary.out"
			printf '%s\n' "$found"
			say "FAIL canary: $res, exit $st: the checkers do not report here"
			failed="$failed canary"
		fi
		continue
		;;
	kmod:*)
		p=${r#kmod:}
		KERNEL=$kernel KVER=$kver KMODDIR=$kmoddir VM_KLOG=$klog VM_TIMEOUT=$limit \
			sh "$here/run-in-vm.sh" -v "$here/kmod.sh" "$ko" "$repo/selftests/build/kmod/$p" \
			>"$out/$p.out" 2>&1
		st=$?
		res=$(grep -E '^(ok|not ok) ' "$out/$p.out" | awk '
			/^ok / { ok++ } /^not ok / { bad++ }
			/# SKIP/ { skip++ }
			END { printf "%d ok, %d not ok, %d skipped", ok - skip, bad, skip }')
		grep -E '^not ok |^run-in-vm' "$out/$p.out" | sed "s/^/# $p: /"
		bad=$(grep -c '^not ok ' "$out/$p.out")
		;;
	live)
		# live.sh's kmod cases, the ones this tree's live.sh has.
		cases=$(sed -n 's/^\t\(kmod[a-z-]*\)\( | \(kmod[a-z-]*\)\)*)$/&/p' "$here/live.sh" |
			tr -d '\t)' | tr '|' ' ')
		# shellcheck disable=SC2086
		KERNEL=$kernel KVER=$kver KMODDIR=$kmoddir VM_KLOG=$klog VM_TIMEOUT=$limit \
			sh "$here/run-in-vm.sh" -v "$here/live.sh" downtime=5000 "ko=$ko" $cases >"$out/live.out" 2>&1
		st=$?
		# A case passes when send and recv exit 0 and the image equals
		# the stopped writer's memory.  KASAN and lockdep slow the
		# guest's kernel: 300 ms of downtime (the default) is not
		# reached at 4 MB/s of writes, 5 s is.
		bad=$(awk '
			$2 == "send-rc" || $2 == "recv-rc" { if ($3 != 0) bad[$1] = 1; seen[$1] = 1 }
			$2 == "cmp" { if ($3 != "same") bad[$1] = 1; cmp[$1] = 1 }
			$2 == "error" { bad[$1] = 1; seen[$1] = 1 }
			END { for (c in seen) if (bad[c] || !cmp[c]) print c }' "$out/live.out" | tr '\n' ' ')
		n=$(awk '$2 == "send-rc"' "$out/live.out" | wc -l)
		res="$n cases${bad:+, failed: $bad}"
		grep -E ' error |cmp differ|-rc [1-9]|^run-in-vm' "$out/live.out" | sed 's/^/# live: /'
		[ -z "$bad" ] && [ "$n" = "$(echo $cases | wc -w)" ] && bad=0 || bad=1
		;;
	kvm)
		KERNEL=$kernel KVER=$kver KMODDIR=$kmoddir VM_KLOG=$klog VM_TIMEOUT=$limit \
			sh "$here/run-in-vm.sh" -v "$here/kvm.sh" "ko=$ko" downtime=5000 \
			>"$out/kvm.out" 2>&1
		st=$?
		grep -E '^[a-z]+ (error|skip)|cmp differ|pattern BAD|-rc [1-9]|^run-in-vm' "$out/kvm.out" |
			sed 's/^/# kvm: /'
		# Only the module's lines count: this kernel has no BTF, so the
		# soft-dirty tracker's mapping watch (CO-RE eBPF) cannot load and
		# its rate and live cases refuse; Debian's kernels test those.
		if grep -E '^(kvm|pages|kmod|kmodpages|ratekmod|livekmod) ' "$out/kvm.out" |
			grep -qE '^[a-z]+ error|cmp differ|pattern BAD|-rc [1-9]|^kmod skip' ||
			! grep -q '^livekmod cmp same' "$out/kvm.out"; then
			bad=1
		else
			bad=0
		fi
		res="$(grep -c '' "$out/kvm.out") lines, livekmod $(sed -n 's/^livekmod cmp //p' "$out/kvm.out" | cut -c1-20)"
		;;
	*)
		say "unknown run $r (canary, kmod:PROGRAM, live, kvm)"
		exit 2
		;;
	esac
	took=$(($(date +%s) - ts))
	if [ -s "$klog" ]; then
		log_lines=$((log_lines + $(wc -l <"$klog")))
		found=$(scan "$klog" "$r")
		n=$(printf '%s\n' "$found" | grep -c 'kernel report')
		if [ "$n" != 0 ]; then
			printf '%s\n' "$found"
			reports=$((reports + n))
			kernel_ok="$n kernel reports"
		else
			kernel_ok="kernel log clean"
		fi
	else
		kernel_ok="no kernel log"
	fi
	if [ "$st" != 0 ] || [ "$bad" != 0 ] || [ "$kernel_ok" != "kernel log clean" ]; then
		failed="$failed $r"
		verdict=FAIL
	else
		verdict=ok
	fi
	say "$verdict $r: $res; exit $st; $kernel_ok; $took s (log: $klog)"
done

total=$(($(date +%s) - t0))
if [ -n "$failed" ]; then
	say "FAIL:$failed ($reports kernel reports in $log_lines lines of console log;" \
		"kernel $kver ready in $tbuild s, $total s in all)"
	exit 1
fi
say "clean: $(echo $runs | wc -w) runs under $kver, no kernel report in $log_lines lines of" \
	"console log (kernel ready in $tbuild s, $total s in all)"
