#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Dirty tracking and live migration of a real KVM guest, run inside the VM
# by selftests/test_kvm_vm (nested KVM: the VM's CPU has svm, kvm_amd runs
# with shadow paging).  The guest is selftests/build/kvm_vmm: 16 MiB of
# guest RAM in a memfd, read and tracked as /proc/PID/fd/N.
#
# Prints one line per result for the test to check:
#
#   kvm skip REASON         /dev/kvm cannot appear here (then nothing else)
#   kvm ok                  /dev/kvm is there
#   pages halted ...        kvm_vmm --pages 3,17,1000: its report
#   pages nonzero LIST      the pages of the memfd that are not all zero
#   pages pattern ok|BAD .. whether each holds dword k = page * 1024 + k + 1
#   rate softdirty JSON     lmig dirtyrate --tracker soft-dirty on kvm_vmm --rate
#   rate scan JSON          the same with --tracker scan, same guest
#   rate halted ...         that guest's report (pages written, real rate)
#   live send-rc N          lmig send's exit status (and the lines below,
#   live recv-rc N          as vm/live.sh prints them), --tracker soft-dirty
#   live send JSON
#   live send-err/recv-err TEXT
#   live state S            the VMM's state after send (T: stopped)
#   live cmp same|differ .. the destination against the stopped guest's RAM
#   live changed yes|no     whether the RAM changed while it was sent
#   live halted ...         the guest's report once resumed and stopped
#   livekmod ...            the same lines for a migration with --tracker kmod
#   CASE error TEXT         a case that could not run
#
# With ko=PATH, lmig.ko is loaded from PATH (4 KiB shmem folios:
# shmem_enabled never, restored at the end) and these come too:
#
#   kmod ok|skip REASON     the module is loaded (or why not: then no
#                           kmodpages, ratekmod or livekmod lines)
#   kmodpages halted ...    kvm_vmm --pages 3,17,1000 started after
#   kmodpages before N      selftests/build/kvm_harvest attached: its report,
#   kmodpages pages LIST    and what that program printed (the pages
#   kmodpages stats ...     lmig.ko reported for the guest's writes, the
#   kmodpages idle N        harvest's counters, the next harvest)
#   ratekmod kmod JSON      lmig dirtyrate --tracker kmod on another guest
#   ratekmod halted ...     writing RATE pages/s, and that guest's report
#
# downtime=MS gives the migrations send --downtime-ms MS (a slower kernel:
# the debug kernel of debug-host.sh).
#
# Usage: kvm.sh [ko=PATH] [downtime=MS] [RATE]   (the guest's pages per second,
#                                                default 1024)
set -u

. "$(dirname "$0")/guest-lib.sh"
. "$here/hang.sh"
vmm=$repo/selftests/build/kvm_vmm
harvest=$repo/selftests/build/kvm_harvest
ko=""
rate=1024
downtime=""
for a in "$@"; do
	case $a in
	ko=*) ko=${a#ko=} ;;
	downtime=*) downtime=${a#downtime=} ;;
	*) rate=$a ;;
	esac
done
tmp=$(mktemp -d)
shmem=/sys/kernel/mm/transparent_hugepage/shmem_enabled
shmem0=$(sed 's/.*\[\(.*\)\].*/\1/' "$shmem" 2>/dev/null || true)
trap 'rm -rf "$tmp" /dev/shm/lmig-kvm-live.img
[ -z "$ko" ] || [ -z "$shmem0" ] || [ "${LMIG_VM:-0}" != 1 ] || echo "$shmem0" >"$shmem"' EXIT

one_line() {
	tr '\n' ' ' <"$1" | sed 's/ *$//'
}

# Wait until FILE contains PATTERN (up to 30 s).
wait_for() { # FILE PATTERN
	n=0
	until grep -q "$2" "$1" 2>/dev/null; do
		n=$((n + 1))
		[ $n -lt 300 ] || return 1
		sleep 0.1
	done
}

# The VMM's memfd from its ready line "memfd /proc/PID/fd/N".
mem_of() {
	sed -n 's/^memfd //p' "$1"
}

kvm_load
[ -x "$vmm" ] || { echo "kvm error $vmm is not built"; exit 1; }
echo "kvm ok $(dmesg | grep -m 1 -i 'nested paging' | sed 's/^\[[^]]*\] //')"

# lmig.ko, with 4 KiB shmem folios: a written page is reported alone.
kmod=0
if [ -n "$ko" ]; then
	if [ "${LMIG_VM:-0}" != 1 ]; then
		echo "kmod skip not in the VM (LMIG_VM=1): the module is not loaded here"
	elif ! insmod "$ko" 2>"$tmp/insmod.err"; then
		echo "kmod error insmod $ko: $(one_line "$tmp/insmod.err")"
	elif [ ! -x "$harvest" ]; then
		echo "kmod error $harvest is not built"
	else
		[ ! -w "$shmem" ] || echo never >"$shmem"
		kmod=1
		echo "kmod ok $(sed 's/.*\[\(.*\)\].*/shmem_enabled \1/' "$shmem" 2>/dev/null)"
	fi
fi

# (a) The guest writes three pages; exactly those must be non-zero.
"$vmm" --mem-size 16M --pages 3,17,1000 --ready-fd 3 --hold 3>"$tmp/a.ready" \
	>"$tmp/a.out" 2>"$tmp/a.err" &
vpid=$!
if wait_for "$tmp/a.out" '^halted'; then
	echo "pages $(cat "$tmp/a.out")"
	python3 - "$(mem_of "$tmp/a.ready")" <<'EOF'
import struct, sys
data = open(sys.argv[1], 'rb').read()
nonzero, bad = [], []
for p in range(len(data) // 4096):
    page = data[p * 4096:(p + 1) * 4096]
    if page.count(0) == 4096:
        continue
    nonzero.append(p)
    want = struct.pack('<1024I', *[p * 1024 + k + 1 for k in range(1024)])
    if page != want:
        bad.append(p)
print('pages nonzero ' + ','.join(map(str, nonzero)))
print('pages pattern ' + ('ok' if not bad else 'BAD ' + ','.join(map(str, bad))))
EOF
else
	echo "pages error kvm_vmm did not halt: $(one_line "$tmp/a.err")"
fi
kill -TERM "$vpid" 2>/dev/null
wait_bounded pages 10 "$vpid"

# (a') The same guest under lmig.ko: it runs only once the module is
# attached to its RAM, and the next harvest must report its three pages.
if [ "$kmod" = 1 ]; then
	mkfifo "$tmp/go"
	"$vmm" --mem-size 16M --pages 3,17,1000 --ready-fd 3 --go-fd 4 --hold 3>"$tmp/k.ready" \
		4<>"$tmp/go" >"$tmp/k.out" 2>"$tmp/k.err" &
	vpid=$!
	if wait_for "$tmp/k.ready" '^memfd'; then
		HANG_ALSO=$vpid bounded kmodpages 90 "$harvest" "$(mem_of "$tmp/k.ready")" \
			"$vpid" "$tmp/go" "$tmp/k.out" >"$tmp/k.harvest" 2>&1
		sed 's/^/kmodpages /' "$tmp/k.harvest"
		echo "kmodpages $(cat "$tmp/k.out")"
	else
		echo "kmodpages error kvm_vmm did not report its memfd: $(one_line "$tmp/k.err")"
	fi
	kill -TERM "$vpid" 2>/dev/null
	wait_bounded kmodpages 10 "$vpid"
	[ ! -s "$tmp/k.err" ] || echo "kmodpages error kvm_vmm: $(one_line "$tmp/k.err")"
fi

# (b) Dirty rate of a guest writing RATE pages/s, measured by TRACKERS in
# turn; TAG prefixes the lines.
rate_case() { # TAG TRACKER...
	rtag=$1
	shift
	"$vmm" --mem-size 16M --rate "$rate" --ready-fd 3 3>"$tmp/b.ready" >"$tmp/b.out" \
		2>"$tmp/b.err" &
	vpid=$!
	if wait_for "$tmp/b.ready" '^memfd'; then
		mem=$(mem_of "$tmp/b.ready")
		sleep 0.5
		for t in "$@"; do
			HANG_ALSO=$vpid bounded "$rtag" 30 "$lmig" dirtyrate --pid "$vpid" \
				--mem "$mem" --tracker "$t" --interval 500 --count 3 --json \
				>"$tmp/dr.json" 2>"$tmp/dr.err" ||
				echo "$rtag error dirtyrate --tracker $t failed: $(one_line "$tmp/dr.err")"
			case $t in
			soft-dirty) tag=softdirty ;;
			*) tag=$t ;;
			esac
			echo "$rtag $tag $(one_line "$tmp/dr.json")"
		done
	else
		echo "$rtag error kvm_vmm did not report its memfd: $(one_line "$tmp/b.err")"
	fi
	# A harvest stops the VMM for a moment; it must never leave it stopped.
	[ "$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$vpid/status")" != T ] ||
		echo "$rtag error dirtyrate left kvm_vmm stopped: $(where "$vpid")"
	kill -TERM "$vpid" 2>/dev/null
	kill -CONT "$vpid" 2>/dev/null
	wait_bounded "$rtag" 10 "$vpid"
	echo "$rtag $(one_line "$tmp/b.out")"
	[ ! -s "$tmp/b.err" ] || echo "$rtag error kvm_vmm: $(one_line "$tmp/b.err")"
}

rate_case rate soft-dirty scan
# A guest of its own: a kmod harvest slows the guest (see Documentation/kmod.md).
[ "$kmod" = 0 ] || rate_case ratekmod kmod

# (c) Live migration over loopback while the guest writes, with TRACKER.
live_case() { # TAG TRACKER
	tag=$1
	out=/dev/shm/lmig-kvm-live.img
	rm -f "$out" "$tmp/port"
	"$vmm" --mem-size 16M --rate "$rate" --ready-fd 3 3>"$tmp/c.ready" >"$tmp/c.out" \
		2>"$tmp/c.err" &
	vpid=$!
	"$lmig" recv --listen 127.0.0.1:0 --ready-fd 4 --out "$out" --no-sync --json \
		--no-progress --accept-timeout 60 4>"$tmp/port" >"$tmp/recv.json" 2>"$tmp/recv.err" &
	rpid=$!
	if wait_for "$tmp/c.ready" '^memfd' && wait_for "$tmp/port" .; then
		mem=$(mem_of "$tmp/c.ready")
		sleep 0.5
		cat "$mem" >"$tmp/before.img"
		rc=0
		# Past its own --timeout: say where it and the VMM are, end it.
		HANG_ALSO=$vpid bounded "$tag" 90 "$lmig" send --mem "$mem" --pid "$vpid" \
			--freeze signal --tracker "$2" --to "127.0.0.1:$(cat "$tmp/port")" \
			--timeout 60 ${downtime:+--downtime-ms "$downtime"} --json --no-progress \
			>"$tmp/send.json" 2>"$tmp/send.err" || rc=$?
		rrc=0
		wait_bounded "$tag" 70 "$rpid" || rrc=$?
		echo "$tag send-rc $rc"
		echo "$tag recv-rc $rrc"
		echo "$tag send $(one_line "$tmp/send.json")"
		[ ! -s "$tmp/send.err" ] || echo "$tag send-err $(one_line "$tmp/send.err")"
		[ ! -s "$tmp/recv.err" ] || echo "$tag recv-err $(one_line "$tmp/recv.err")"
		echo "$tag state $(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$vpid/status")"
		if [ ! -e "$out" ]; then
			echo "$tag cmp differ: no $out"
		elif c=$(cmp "$mem" "$out" 2>&1); then
			echo "$tag cmp same"
		else
			echo "$tag cmp differ: $(echo "$c" | tr '\n' ' ' | sed 's/ *$//')"
		fi
		if [ -e "$out" ] && ! cmp -s "$tmp/before.img" "$out"; then
			echo "$tag changed yes"
		else
			echo "$tag changed no"
		fi
	else
		echo "$tag error kvm_vmm or lmig recv did not start: $(one_line "$tmp/c.err")" \
			"$(one_line "$tmp/recv.err")"
		kill "$rpid" 2>/dev/null
		wait "$rpid"
	fi
	kill -TERM "$vpid" 2>/dev/null
	kill -CONT "$vpid" 2>/dev/null
	wait_bounded "$tag" 10 "$vpid"
	echo "$tag $(one_line "$tmp/c.out")"
	[ ! -s "$tmp/c.err" ] || echo "$tag error kvm_vmm: $(one_line "$tmp/c.err")"
	rm -f "$out" "$tmp/before.img"
}

live_case live soft-dirty
[ "$kmod" = 0 ] || live_case livekmod kmod
[ "$kmod" = 0 ] || rmmod lmig 2>/dev/null || echo "kmod error rmmod lmig failed"
exit 0
