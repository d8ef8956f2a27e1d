#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# What two versions of lmig.ko cost, side by side in one VM boot of
# Debian's SERIES kernel: the module built from git revision OLD and the
# one in the working tree, each loaded in turn (OLD, new, OLD, new) and
# measured by bench/kmod_ab.c (harvest time idle and after 1 % of the
# pages were written, the time to fault in and to unmap a mapping of the
# watched object and of an unwatched one).  Prints one line per module
# load and measure: "ab VERSION NAME MS".
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
		"$helper" "$size" 5 | sed "s/^/ab $v /"
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
# Every source of the module at OLD, however many files it had then.
git -C "$repo" ls-tree --name-only "$ref" kmod/ | grep -E '\.[ch]$|/Makefile$' |
	while read -r f; do
		git -C "$repo" show "$ref:$f" >"$work/old/src/${f#kmod/}"
	done
git -C "$repo" show "$ref:include/uapi/linux/lmig.h" >"$work/old/uapi/linux/lmig.h"
make -s -C "$work/old/src" KDIR="$kdir" LMIG_UAPI="$work/old/uapi" LMIG_VERSION="$(cat "$repo/VERSION")" \
	>"$work/old/build.log" 2>&1 ||
	{ cat "$work/old/build.log" >&2; exit 1; }
${CC:-cc} -O2 -std=gnu11 -D_GNU_SOURCE -Wall -I"$repo/include" -o "$work/kmod_ab" \
	"$here/kmod_ab.c"
echo "# old: $ref; new: working tree; $kver; ${size} MiB memfd, 4 KiB folios"
KERNEL=$kernel KVER=$kver VM_MEM=${VM_MEM:-2048} VM_TIMEOUT=${VM_TIMEOUT:-900} \
	exec sh "$repo/selftests/vm/run-in-vm.sh" "$here/kmod-ab.sh" --vm \
	"$work/old/src/lmig.ko" "$new" "$work/kmod_ab" "$size"
