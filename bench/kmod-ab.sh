#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Harvest cost of two versions of lmig.ko side by side, in one VM boot of
# Debian's SERIES kernel: the module built from git revision OLD and the
# one in the working tree, each loaded in turn (OLD, new, OLD, new) and
# timed by bench/kmod_harvest (tracker_harvest() as `lmig send` calls it)
# on the same memfd size and cases.  Prints the raw lines, one per module
# load and case: "ab VERSION harvest kmod CASE ms=... reported=...".
#
# Usage: kmod-ab.sh OLD [SERIES [SIZE_MIB]]   (defaults: 6.1, 256)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

if [ "${1:-}" = --vm ]; then
	old=$2
	new=$3
	helper=$4
	size=$5
	echo never >/sys/kernel/mm/transparent_hugepage/shmem_enabled
	for v in old new old new; do
		eval ko=\$$v
		insmod "$ko" || { echo "error insmod $ko"; exit 1; }
		"$helper" "$size" 5 kmod -- 0.01 1 50 | sed "s/^/ab $v /"
		rmmod lmig
	done
	exit 0
fi

ref=$1
series=${2:-6.1}
size=${3:-256}
work=$repo/selftests/build/bench-kmod-ab
rm -rf "$work/old"
mkdir -p "$work/old/src" "$work/old/uapi/linux"
set -- $(sh "$repo/selftests/vm/kmod-build.sh" "$series" bench-kmod-ab-new)
kernel=$1
kver=$2
new=$3
kdir=/usr/src/linux-headers-$kver
[ -e "$kdir/Makefile" ] || kdir=/lib/modules/$kver/build
for f in kmod/lmig_main.c kmod/lmig_trace.h kmod/Makefile; do
	git -C "$repo" show "$ref:$f" >"$work/old/src/${f#kmod/}"
done
git -C "$repo" show "$ref:include/uapi/linux/lmig.h" >"$work/old/uapi/linux/lmig.h"
make -s -C "$work/old/src" KDIR="$kdir" LMIG_UAPI="$work/old/uapi" >"$work/old/build.log" 2>&1 ||
	{ cat "$work/old/build.log" >&2; exit 1; }
${CC:-cc} -O2 -std=gnu11 -D_GNU_SOURCE -Wall -I"$repo/include" -I"$repo/user" \
	-o "$work/kmod_harvest" "$here/kmod_harvest.c" "$repo/user/track.c" \
	"$repo/user/track_kmod.c" "$repo/user/track_softdirty.c" "$repo/user/track_scan.c" \
	"$repo/user/track_uffd.c" "$repo/user/codec.c" "$repo/user/err.c" "$repo/user/procfs.c" \
	-llz4 -lxxhash -lm
echo "# old: $ref; new: working tree; $kver; ${size} MiB memfd, 4 KiB folios"
KERNEL=$kernel KVER=$kver VM_MEM=${VM_MEM:-2048} VM_TIMEOUT=${VM_TIMEOUT:-900} \
	exec sh "$repo/selftests/vm/run-in-vm.sh" "$here/kmod-ab.sh" --vm \
	"$work/old/src/lmig.ko" "$new" "$work/kmod_harvest" "$size"
