#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build lmig.ko for Debian's SERIES kernel (as vm/kmod-host.sh
# does) and run vm/live.sh's kmod cases (kmod, kmod-thp, kmod-churn, kmod-holes,
# kmod-madvise, kmod-pwrite, kmod-shortmaps) in a VM booting that kernel:
# live migrations with `lmig send --tracker kmod`.  Prints live.sh's lines
# and exits with the VM's status, or 4 (reason on stderr) when the kernel
# image or its headers are not installed.
#
# Usage: live-kmod-host.sh [SERIES]   (default 6.1)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
series=${1:-6.1}

kernel=$(ls /boot/vmlinuz-"$series".* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "no /boot/vmlinuz-$series.* (scripts/install-deps.sh check installs it)" >&2; exit 4; }
kver=${kernel#/boot/vmlinuz-}
kdir=/usr/src/linux-headers-$kver
[ -e "$kdir/Makefile" ] || kdir=/lib/modules/$kver/build
[ -e "$kdir/Makefile" ] || { echo "no headers for $kver (linux-headers-$kver)" >&2; exit 4; }

out=$repo/selftests/build/kmod-live/$kver
mkdir -p "$out"
cp "$repo"/kmod/*.c "$repo"/kmod/*.h "$repo"/kmod/Makefile "$out"/
if ! make -s -C "$out" KDIR="$kdir" LMIG_UAPI="$repo/include/uapi" >"$out/build.log" 2>&1; then
	sed 's/^/# /' "$out/build.log" >&2
	echo "kmod error cannot build lmig.ko for $kver"
	exit 1
fi
KERNEL=$kernel KVER=$kver exec sh "$here/run-in-vm.sh" "$here/live.sh" "ko=$out/lmig.ko" kmod kmod-thp kmod-churn kmod-holes \
	kmod-madvise kmod-pwrite kmod-shortmaps
