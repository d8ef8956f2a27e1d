#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# What a dirty-page harvest costs on a running KVM guest (make bench): a
# QEMU guest under `-accel kvm` with its RAM in a shared memfd, watched by
# every tracker in turn, side by side in one run.  The host's /dev/kvm
# cannot run such a guest, so this boots the VM of
# selftests/vm/run-in-vm.sh (Debian's 6.1 or TRKVM_SERIES, svm: nested KVM, a host thread
# per CPU) with lmig.ko built for it, and runs selftests/vm/tracker-kvm.sh
# there: one guest paced at TRKVM_RATE MB/s (the dirty rate each tracker
# reports against the guest's own count) and one writing as fast as it
# can (the guest's write rate while tracked against untracked), each with
# the guest's RAM in 4 KiB shmem pages, in 2 MiB transparent huge pages
# (shmem_enabled=always) and in 2 MiB hugetlbfs pages.
#
# Prints a Markdown table (make bench appends it to
# bench/results-latest.md); progress and the VM's own lines on stderr.
#
# Knobs (environment): TRKVM_BACKINGS ("4k thp hugetlb"), TRKVM_TRACKERS
# ("auto kmod soft-dirty soft-dirty:any scan uffd"), TRKVM_RATE (MB/s, 4),
# TRKVM_TOUCH (MiB rewritten, 32), TRKVM_MEM (guest MiB, 128),
# TRKVM_COUNT (harvests a run, 3), TRKVM_ACCEL (the VM's -accel,
# tcg,thread=multi on 6.1, tcg,thread=single on 6.12), TRKVM_SERIES (the VM's Debian kernel, 6.1 or 6.12;
# without its headers the VM boots run-in-vm.sh's default kernel with no
# lmig.ko), TRKVM_KEEP (a file to keep the raw lines in).
#
# Exit status 0 with the table; 1 if a run failed (a harness error, or a
# tracker that can watch the guest failed), 4 when there is no VM here.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
vm=$top/selftests/vm
BACKINGS=${TRKVM_BACKINGS:-4k thp hugetlb}
TRACKERS=${TRKVM_TRACKERS:-auto kmod soft-dirty soft-dirty:any scan uffd}
RATE=${TRKVM_RATE:-4}
TOUCH=${TRKVM_TOUCH:-32}
MEM=${TRKVM_MEM:-128}
COUNT=${TRKVM_COUNT:-3}
SERIES=${TRKVM_SERIES:-6.1}
case $SERIES in 6.1 | 6.12) ;; *) echo "bench/tracker_kvm: TRKVM_SERIES must be 6.1 or 6.12, not '$SERIES'" >&2; exit 2 ;; esac
# 6.12 under MTTCG died of a text-patching oops once (selftests/vm/tracker-kvm.sh).
[ "$SERIES" = 6.1 ] && ACCEL=${TRKVM_ACCEL:-tcg,thread=multi} || ACCEL=${TRKVM_ACCEL:-tcg,thread=single}
for kv in "TRKVM_RATE=$RATE" "TRKVM_TOUCH=$TOUCH" "TRKVM_MEM=$MEM" "TRKVM_COUNT=$COUNT"; do
	case ${kv#*=} in
	'' | *[!0-9]* | 0) echo "bench/tracker_kvm: ${kv%%=*} must be a whole number above 0, not '${kv#*=}'" >&2
		exit 2 ;;
	esac
done

out=$(mktemp "${TMPDIR:-/tmp}/lmig-trkvm.XXXXXX")
trap 'rm -f "$out"' EXIT

guest=$(sh "$top/selftests/qemu/mkguest.sh" --smp) || exit 4
rc=0
built=$(sh "$vm/kmod-build.sh" "$SERIES" bench-trkvm 2>"$out") || rc=$?
kernel="" kver="" ko=""
case $rc in
0) set -- $built; kernel=$1 kver=$2 ko="ko=$3" ;;
4) echo "# lmig.ko: $(tail -n 1 "$out") (no kmod rows)" >&2 ;;
*) sed 's/^/# /' "$out" >&2; echo "bench/tracker_kvm: cannot build lmig.ko" >&2; exit 1 ;;
esac
start=$(date +%s)
echo "# tracker_kvm: booting the VM ($ACCEL), backings $BACKINGS" >&2
rc=0
KERNEL=$kernel KVER=$kver VM_ACCEL=$ACCEL VM_TIMEOUT=${VM_TIMEOUT:-1200} \
	nice -n 10 sh "$vm/run-in-vm.sh" -v "$vm/tracker-kvm.sh" $ko "guest=$guest" \
	"backings=$BACKINGS" "trackers=$TRACKERS" "rate=$RATE" "touch=$TOUCH" "mem=$MEM" \
	"count=$COUNT" >"$out" 2>&1 || rc=$?
[ -z "${TRKVM_KEEP:-}" ] || cp "$out" "$TRKVM_KEEP"
[ $rc != 4 ] || { cat "$out" >&2; exit 4; }
sed 's/^/# /' "$out" >&2

echo "#### Dirty trackers on a nested KVM guest ($(date -u +%Y-%m-%d), ${kver:-default kernel}, $(($(date +%s) - start)) s)"
echo ""
echo "- Guest: QEMU $(qemu-system-x86_64 --version | head -n 1 | sed 's/.*version \([^ ]*\).*/\1/')" \
	"\`-accel kvm -smp 1 -m $MEM\`, memory-backend-memfd share=on, the smpguest rewriting" \
	"$TOUCH MiB one word a page; paced at $RATE MB/s, or flat out"
echo "- Each tracker: \`lmig dirtyrate --pid QEMU --mem /proc/QEMU/fd/N --interval 1000" \
	"--count $COUNT --object-writes mapped\` (NAME:any: --object-writes any), means over the harvests;" \
	"lmig on the VM's CPU 1, QEMU on CPU 0; the untracked window is as long, right after"
echo ""
trc=0
python3 "$here/tracker_kvm_table.py" "$out" || trc=$?
echo ""
[ $rc = 0 ] || { echo "bench/tracker_kvm: the VM run exited $rc" >&2; exit 1; }
exit $trc
