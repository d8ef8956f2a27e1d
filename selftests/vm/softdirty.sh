#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# The soft-dirty checks, run inside the VM by selftests/test_vm (the host
# kernel has no soft-dirty).  Prints one line per result for the test to
# check:
#
#   softdirty JSON     lmig dirtyrate --tracker soft-dirty on `lmig dirty`
#                      (--object-writes mapped: it writes only through its
#                      mapping, so the rates compare the page-table bits
#                      alone, without the object check's content comparison)
#   scan JSON          the same with --tracker scan, same writer
#   auto JSON          --tracker auto (must pick soft-dirty)
#   dirty JSON         the writer's own report
#   nolost-shared ...  test_vm --nolost shared (see test_vm.c)
#   nolost-anon ...    test_vm --nolost anon
#   nolostmap-CASE ... test_nolost --run soft-dirty CASE: writes through
#                      short-lived, new, zapped and moved mappings, a
#                      forked child, io_uring madvise, process_madvise, a
#                      vfork child (shortlived, newmap, dontneed, mremap,
#                      fork, uring, pageout, vfork; see test_nolost.c),
#                      shadow copy compared byte for byte
#   livemap RESULT     lmig send --tracker soft-dirty --object-writes
#                      mapped --freeze signal of the short-lived-mapping
#                      writer to lmig recv over loopback: "same" when the
#                      image equals the paused source, then send's JSON
#                      (--downtime-ms 3000: under TCG a harvest that
#                      compares every page takes about 80 ms, and each
#                      does, the writer changing its mappings every 5 ms)
#
# Exits non-zero when a command fails.
set -eu

. "$(dirname "$0")/guest-lib.sh"
tv=$repo/selftests/build/test_vm
tmp=$(mktemp -d)

"$lmig" dirty --mem memfd:lmig-sd --size 32Mi --rate 4M --ready-fd 3 --json --no-progress \
	3>"$tmp/ready" >"$tmp/dirty.json" &
dpid=$!
wait_file "$tmp/ready" || { echo "lmig dirty did not report its memfd"; exit 1; }
mem=$(cat "$tmp/ready")

for t in soft-dirty scan; do
	"$lmig" dirtyrate --pid "$dpid" --mem "$mem" --tracker "$t" --interval 500 --count 4 \
		--object-writes mapped --json >"$tmp/dr.json" || { echo "dirtyrate --tracker $t failed"; exit 1; }
	case $t in
	soft-dirty) tag=softdirty ;;
	*) tag=$t ;;
	esac
	echo "$tag $(cat "$tmp/dr.json")"
done
"$lmig" dirtyrate --pid "$dpid" --mem "$mem" --interval 200 --count 1 --object-writes mapped \
	--json >"$tmp/dr.json" ||
	{ echo "dirtyrate --tracker auto failed"; exit 1; }
echo "auto $(cat "$tmp/dr.json")"
kill -TERM "$dpid"
wait "$dpid" || true
echo "dirty $(cat "$tmp/dirty.json")"

for kind in shared anon; do
	echo "nolost-$kind $("$tv" --nolost "$kind" 2>&1)"
done

tn=$repo/selftests/build/test_nolost
for c in shortlived newmap dontneed mremap fork uring pageout vfork; do
	echo "nolostmap-$c $("$tn" --run soft-dirty "$c" 2>&1)"
done

"$tn" --writer shortlived 8192 >"$tmp/writer" &
hold=$!
wait_file "$tmp/writer" || { echo "test_nolost --writer did not start"; exit 1; }
read -r wpid wmem <"$tmp/writer"
"$lmig" recv --listen 127.0.0.1:0 --ready-fd 3 --out /dev/shm/lmig-i17-live.img --no-sync \
	--timeout 60 --json 3>"$tmp/port" >"$tmp/recv.json" 2>"$tmp/recv.err" &
rpid=$!
wait_file "$tmp/port" || { echo "lmig recv did not listen"; exit 1; }
port=$(sed 's/.*://' "$tmp/port")
rc=0
"$lmig" send --pid "$wpid" --mem "$wmem" --to "127.0.0.1:$port" --tracker soft-dirty \
	--object-writes mapped --freeze signal --downtime-ms 3000 --no-progress --json >"$tmp/send.json" \
	2>"$tmp/send.err" || rc=$?
wait "$rpid" || rc=$?
if [ $rc -eq 0 ] && cmp -s "$wmem" /dev/shm/lmig-i17-live.img; then
	res=same
else
	res="differ rc=$rc $(cat "$tmp/send.err" "$tmp/recv.err" | tr '\n' ' ')"
fi
echo "livemap $res $(cat "$tmp/send.json")"
kill -KILL "$hold" "$wpid" 2>/dev/null || true
wait "$hold" 2>/dev/null || true
rm -f /dev/shm/lmig-i17-live.img
rm -rf "$tmp"
