#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Run a shell script as root inside a VM that boots Debian's own kernel
# (QEMU, TCG) with the host's root file system as its root, read-only over
# 9p: host binaries, this repository and its build run on the real kernel.
#
# Usage: run-in-vm.sh [-v] [--modules "NAME|PATH.ko ..."] SCRIPT [ARGS...]
#
# Prints the script's output (stdout and stderr together) and exits with
# its exit status.  Other exit statuses:
#   4    cannot run here (no kernel, QEMU or busybox): the reason on stderr
#   124  the script did not finish within VM_TIMEOUT
#   125  the VM failed before the script started, or stopped while it
#        ran (its kernel panicked, QEMU itself ended): the reason on stderr
#
# Environment: KERNEL (default: the newest /boot/vmlinuz-6.1.*), KVER (its
# module version, default from the file name), KMODDIR (its modules,
# default /lib/modules/KVER; the guest sees them there), VM_KLOG (a file
# to keep the kernel's console log in), VM_TIMEOUT (seconds, default
# 300), VM_MEM (MiB, default 1024), VM_ACCEL (QEMU's -accel, default
# tcg,thread=single), VM_KEEP=1 keeps the run directory.
# See README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$repo/selftests/build/vm
mark=@@LMIG-VM@@

die() {
	code=$1
	shift
	echo "run-in-vm: $*" >&2
	exit "$code"
}

verbose=0
modules=""
while [ $# -gt 0 ]; do
	case $1 in
	-v) verbose=1; shift ;;
	--modules) [ $# -ge 2 ] || die 2 "--modules needs a value"; modules=$2; shift 2 ;;
	--modules=*) modules=${1#--modules=}; shift ;;
	--) shift; break ;;
	-*) die 2 "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || die 2 "usage: run-in-vm.sh [-v] [--modules \"M ...\"] SCRIPT [ARGS...]"
script=$1
shift
[ -r "$script" ] || die 2 "cannot read the script $script"
case $script in
/*) ;;
*) script=$PWD/$script ;;
esac

# What the VM needs from the host.
if [ -z "${KERNEL:-}" ]; then
	KERNEL=$(ls /boot/vmlinuz-6.1.* 2>/dev/null | sort -V | tail -n 1)
	[ -n "$KERNEL" ] || die 4 "no kernel: no /boot/vmlinuz-6.1.* (install linux-image-amd64 or set KERNEL=)"
fi
[ -r "$KERNEL" ] || die 4 "cannot read the kernel $KERNEL"
kver=${KVER:-${KERNEL##*/vmlinuz-}}
mdir=${KMODDIR:-/lib/modules/$kver}
# A kernel with everything built in (the debug kernel of debug-kernel.sh)
# has no kernel/ there, only the lists modprobe reads.
[ -d "$mdir/kernel" ] || [ -e "$mdir/modules.builtin" ] ||
	die 4 "no modules for $kver in $mdir (set KVER= or KMODDIR=)"
qemu=$(command -v qemu-system-x86_64) || die 4 "qemu-system-x86_64 is not installed (qemu-system-x86)"
busybox=/bin/busybox
[ -x "$busybox" ] || die 4 "no busybox (install busybox-static)"
# ldd fails on a static executable: the initramfs has no libc.
! ldd "$busybox" >/dev/null 2>&1 || die 4 "$busybox is not static (install busybox-static)"
command -v cpio >/dev/null || die 4 "cpio is not installed"

# The guest covers /tmp, /var/tmp, /run and /dev/shm with tmpfs and binds a
# repository found there back in (vm/init); the rest of /dev it cannot.
case $build in
/dev/shm/*) ;;
/dev/*) die 125 "the repository is under /dev, which the guest replaces" ;;
esac
case $build in
*[!A-Za-z0-9/._+-]*) die 125 "the path $build has characters the kernel command line cannot carry" ;;
esac
mkdir -p "$build"

# A module file as the guest's insmod wants it: plain ELF.
module_copy() { # NAME DEST
	[ -d "$mdir/kernel" ] || return 0
	f=$(find "$mdir/kernel" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" \
		-o -name "$1.ko.gz" | head -n 1)
	case $f in
	"") return 0 ;;			# built in, or not in this kernel
	*.ko.xz) xz -dc "$f" >"$2/$1.ko" ;;
	*.ko.zst) zstd -qdc "$f" >"$2/$1.ko" ;;
	*.ko.gz) gzip -dc "$f" >"$2/$1.ko" ;;
	*) cp "$f" "$2/$1.ko" ;;
	esac
}

# The initramfs: busybox, /init and the modules needed to reach the host
# root.  Built once per kernel version and rebuilt when /init or this
# script changes; built aside and renamed so concurrent runs never see
# half of one.
initrd=$build/initramfs-$kver.cpio
if [ ! -s "$initrd" ] || [ "$here/init" -nt "$initrd" ] || [ "$0" -nt "$initrd" ]; then
	stage=$(mktemp -d "$build/stage.XXXXXX")
	mkdir -p "$stage/bin" "$stage/modules" "$stage/proc" "$stage/sys" "$stage/dev" \
		"$stage/tmp" "$stage/host"
	cp "$busybox" "$stage/bin/busybox"
	cp "$here/init" "$stage/init"
	chmod 755 "$stage/init" "$stage/bin/busybox"
	for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
		 9pnet 9pnet_virtio netfs fscache 9p; do
		module_copy "$m" "$stage/modules" || die 125 "cannot copy module $m from $mdir"
	done
	(cd "$stage" && find . | cpio --quiet -o -H newc) >"$stage.cpio" ||
		die 125 "cpio failed building the initramfs"
	mv "$stage.cpio" "$initrd"
	rm -rf "$stage"
fi

# The run directory: the job, the modules to load, the script's own
# output directory ($LMIG_VM_OUT), the console log.  The guest mounts it
# read-write at the same path.
run=$(mktemp -d "$build/run.XXXXXX")
mkdir "$run/out"
cleanup() {
	# VM_KLOG=FILE: the kernel's console log, kept for the caller to scan.
	[ -z "${VM_KLOG:-}" ] || tr -d '\r' <"$run/kernel.log" >"$VM_KLOG" 2>/dev/null || true
	if [ "${VM_KEEP:-0}" = 1 ]; then
		echo "run-in-vm: kept $run" >&2
	else
		rm -rf "$run"
	fi
}
trap cleanup EXIT
qpid=""
trap '[ -z "$qpid" ] || kill "$qpid" 2>/dev/null; exit 130' INT TERM

# The guest shadows /tmp, /var/tmp, /run and /dev/shm (but binds this
# repository back): a script from elsewhere there runs as a copy.
case $script in
"$repo"/*) ;;
/tmp/* | /var/tmp/* | /run/* | /dev/*) cp "$script" "$run/script"; script=$run/script ;;
esac
quote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}
{
	printf 'cd %s 2>/dev/null || cd /\n' "$(quote "$PWD")"
	printf 'exec /bin/sh %s' "$(quote "$script")"
	for a in "$@"; do
		printf ' %s' "$(quote "$a")"
	done
	printf '\n'
} >"$run/job"
printf '%s\n' "$modules" >"$run/modules"
# Modules kept elsewhere: the guest shows them as /lib/modules/RELEASE.
[ "$mdir" = "/lib/modules/$kver" ] || (cd "$mdir" && pwd) >"$run/kmoddir"

limit=${VM_TIMEOUT:-300}
# The guest lists where its threads wait this long after it boots, before
# the limit ends the VM (boot takes a few seconds of the limit).
dump=$((limit > 40 ? limit - 20 : limit / 2))
# Kernel messages go to a second serial port (kernel.log), so warnings
# (soft lockups, RCU stalls, hung tasks) are kept whole and never
# interleave with the script's output on the first.  nokaslr: the text
# symbols one boot saves (init, want-kallsyms) hold for every boot, and
# vcpus.py names addresses with them.  no_timer_check: on a loaded host a
# TCG guest can miss the boot-time check that the IO-APIC timer ticks and
# panic.
ksyms=$build/kallsyms-$kver
# A kernel rebuilt under the same version (debug-kernel.sh) needs them anew.
[ -s "$ksyms" ] && [ ! "$KERNEL" -nt "$ksyms" ] || : >"$run/want-kallsyms"
# One host thread runs both vCPUs (thread=single): with a thread each
# (MTTCG), QEMU 7.2 can leave a vCPU looping on code the other vCPU has
# just patched, and the kernel patches its own text whenever a tracepoint
# or static key flips (probes attached, kvm loaded): the guest froze with
# both vCPUs at a patched jump (finish_task_switch, __schedule) or in the
# int3 handler of text_poke_bp, in 4 of 4 runs of a stress script that
# hung in 0 of 2 runs with thread=single.
accel=${VM_ACCEL:-tcg,thread=single}
t0=$(date +%s.%N)
rc=0
timeout -k 5 "$limit" "$qemu" -accel "$accel" -cpu qemu64,+svm -m "${VM_MEM:-1024}" -smp 2 \
	-nographic -no-reboot -nic none \
	-chardev "file,id=klog,path=$run/kernel.log" -serial stdio -serial chardev:klog \
	-monitor "unix:$run/monitor,server=on,wait=off" \
	-kernel "$KERNEL" -initrd "$initrd" \
	-append "console=ttyS1 loglevel=5 nokaslr panic=-1 no_timer_check lmig.run=$run lmig.dump=$dump" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$run,mount_tag=lmigrun,security_model=none" \
	</dev/null >"$run/console.log" 2>&1 &
qpid=$!
# Just before the limit: where each vCPU is, should the guest be frozen.
# The watcher holds none of this script's output open (whoever reads it
# waits for the end of it) and takes its sleep with it when killed: an
# orphaned sleep kept every caller waiting out the whole limit.
(
	sleep $((limit > 10 ? limit - 3 : limit)) &
	spid=$!
	trap 'kill "$spid" 2>/dev/null; exit 0' TERM
	wait "$spid"
	python3 "$here/vcpus.py" "$run/monitor" "$ksyms" >"$run/vcpus" 2>&1
	# And QEMU's own threads: a vCPU thread asleep in the host kernel
	# while its guest does not move is QEMU waiting, not the guest.
	q=$(pgrep -P "$qpid" | head -n 1)
	for t in /proc/$q/task/*; do
		[ -r "$t/stat" ] || continue
		printf 'host thread %s %s state %s wchan %s cpu %s\n' "${t##*/}" \
			"$(tr ' ' _ <"$t/comm")" "$(sed 's/.*) \(.\).*/\1/' "$t/stat")" \
			"$(cat "$t/wchan")" "$(awk '{ print ($14 + $15) / 100 "s" }' "$t/stat")"
	done >>"$run/vcpus" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
wpid=$!
wait "$qpid" || rc=$?
kill "$wpid" 2>/dev/null || true
wait "$wpid" 2>/dev/null || true
t1=$(date +%s.%N)
[ ! -s "$run/kallsyms" ] || mv "$run/kallsyms" "$ksyms"

# The script's output: the lines between the markers, without the serial
# line's carriage returns.
tr -d '\r' <"$run/console.log" | awk -v m="$mark" '
	index($0, m " EXIT ") { i = index($0, m); if (i > 1) print substr($0, 1, i - 1); exit }
	on && !index($0, m " HUNG ") { print }
	index($0, m " START") { on = 1 }'

status=$(tr -d '\r' <"$run/console.log" | sed -n "s/.*$mark EXIT \\([0-9]*\\).*/\\1/p" | tail -n 1)
if [ "$verbose" = 1 ] || [ "${VM_VERBOSE:-0}" = 1 ]; then
	up=$(cut -d' ' -f1 "$run/uptime.start" 2>/dev/null || echo "?")
	echo "run-in-vm: $KERNEL, guest uptime at script start ${up} s, qemu ran" \
		"$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s" >&2
fi
[ -n "$status" ] && exit "$status"

VM_KEEP=1
if grep -q "$mark START" "$run/console.log"; then
	if [ "$rc" = 124 ]; then
		# Where the guest's threads waited near the end (init's hung_dump).
		tr -d '\r' <"$run/console.log" | sed -n "s/.*$mark HUNG /run-in-vm: hung: /p" >&2
		# ... where its CPUs were, and what its kernel said of it.
		sed 's/^/run-in-vm: vcpu: /' "$run/vcpus" >&2 2>/dev/null
		tr -d '\r' <"$run/kernel.log" 2>/dev/null |
			grep -E -A 12 'soft lockup|hard LOCKUP|rcu.*stall|blocked for more than|BUG:|WARNING:|csd:' |
			head -n 60 | sed 's/^/run-in-vm: kernel: /' >&2
		die 124 "the script did not finish within $limit s (console: $run/console.log)"
	fi
	# What ended it: its kernel's last words (a panic and what led to
	# it), and QEMU's own, which follow the script's output on the console.
	tr -d '\r' <"$run/kernel.log" 2>/dev/null |
		grep -E -B 2 -A 12 'Kernel panic|soft lockup|hard LOCKUP|rcu.*stall|BUG:|Oops|general protection' |
		head -n 60 | sed 's/^/run-in-vm: kernel: /' >&2
	tr -d '\r' <"$run/console.log" | grep -v "$mark" | grep -v '^$' | tail -n 5 |
		sed 's/^/run-in-vm: console: /' >&2
	die 125 "the VM stopped while the script ran (qemu exit $rc; console: $run/console.log)"
fi
why=$(tr -d '\r' <"$run/console.log" | sed -n "s/.*$mark FAIL //p" | head -n 1)
if [ -z "$why" ]; then
	why=$(tr -d '\r' <"$run/kernel.log" 2>/dev/null | grep -m 1 'Kernel panic' || true)
fi
if [ -z "$why" ] && [ "$rc" = 124 ]; then
	why="the script had not started after $limit s"
fi
if [ -z "$why" ]; then
	why="qemu exited ($rc) before the script started: $(tr -d '\r' <"$run/console.log" |
		grep -v '^$' | tail -n 1)"
fi
die 125 "VM failed: $why (console: $run/console.log)"
