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
#
# Exits non-zero when a command fails.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
lmig=$repo/user/lmig
tv=$repo/selftests/build/test_vm
tmp=$(mktemp -d)

"$lmig" dirty --mem memfd:lmig-sd --size 32Mi --rate 4M --ready-fd 3 --json --no-progress \
	3>"$tmp/ready" >"$tmp/dirty.json" &
dpid=$!
n=0
while [ ! -s "$tmp/ready" ]; do
	n=$((n + 1))
	[ $n -lt 300 ] || { echo "lmig dirty did not report its memfd"; exit 1; }
	sleep 0.1
done
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
rm -rf "$tmp"
