#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build lmig.ko for Debian's newest installed kernel of a
# series (6.1, 6.12) and run its selftests in a VM booting that kernel
# (vm/kmod.sh).  Prints the VM's output (TAP) and exits with its status,
# or 4 (with the reason on stderr) when the kernel image or its headers
# are not installed.
#
# Usage: kmod-host.sh SERIES
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
series=$1

kernel=$(ls /boot/vmlinuz-"$series".* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "no /boot/vmlinuz-$series.* (scripts/install-deps.sh check installs it)" >&2; exit 4; }
kver=${kernel#/boot/vmlinuz-}
kdir=/usr/src/linux-headers-$kver
[ -e "$kdir/Makefile" ] || kdir=/lib/modules/$kver/build
[ -e "$kdir/Makefile" ] || { echo "no headers for $kver (linux-headers-$kver)" >&2; exit 4; }

# Built from a copy, so the kernels never share objects.
out=$repo/selftests/build/kmod/$kver
mkdir -p "$out"
cp "$repo"/kmod/*.c "$repo"/kmod/*.h "$repo"/kmod/Makefile "$out"/
if ! make -s -C "$out" KDIR="$kdir" LMIG_UAPI="$repo/include/uapi" >"$out/build.log" 2>&1; then
	sed 's/^/# /' "$out/build.log"
	echo "not ok - build lmig.ko for $kver"
	exit 1
fi
grep -v '^Skipping BTF' "$out/build.log" | sed 's/^/# build: /' || true
echo "ok - build lmig.ko for $kver"
KERNEL=$kernel KVER=$kver exec sh "$here/run-in-vm.sh" -v "$here/kmod.sh" "$out/lmig.ko" \
	"$repo/selftests/build/kmod/test_lmig_kmod" "$repo/selftests/build/kmod/test_lmig_nolost"
