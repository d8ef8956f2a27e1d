#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build lmig.ko for Debian's newest installed kernel of a
# series (6.1, 6.12), from a copy of kmod/ in selftests/build/NAME/KVER
# (one copy per user and kernel, so builds never share objects).  Prints
# one line, "KERNEL KVER KO" (the kernel image, its version, the built
# module), for run-in-vm.sh's KERNEL= and KVER= and the script's argument.
#
# Exits 4 (reason on stderr) when the kernel image or its headers are not
# installed, 1 (the build log on stderr) when the build fails.
#
# Usage: kmod-build.sh SERIES NAME
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
series=$1
name=$2

kernel=$(ls /boot/vmlinuz-"$series".* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "no /boot/vmlinuz-$series.* (scripts/install-deps.sh check installs it)" >&2; exit 4; }
kver=${kernel#/boot/vmlinuz-}
kdir=/usr/src/linux-headers-$kver
[ -e "$kdir/Makefile" ] || kdir=/lib/modules/$kver/build
[ -e "$kdir/Makefile" ] || { echo "no headers for $kver (linux-headers-$kver)" >&2; exit 4; }

out=$repo/selftests/build/$name/$kver
mkdir -p "$out"
cp "$repo"/kmod/*.c "$repo"/kmod/*.h "$repo"/kmod/Makefile "$out"/
if ! make -s -C "$out" KDIR="$kdir" LMIG_UAPI="$repo/include/uapi" >"$out/build.log" 2>&1; then
	sed 's/^/# /' "$out/build.log" >&2
	echo "cannot build lmig.ko for $kver" >&2
	exit 1
fi
echo "$kernel $kver $out/lmig.ko"
