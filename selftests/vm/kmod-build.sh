#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build lmig.ko for Debian's newest installed kernel of a
# series (6.1, 6.12), from a copy of kmod/ in selftests/build/NAME/KVER
# (host-lib.sh).  Prints one line, "KERNEL KVER KO" (the kernel image, its
# version, the built module), for run-in-vm.sh's KERNEL= and KVER= and the
# script's argument.
#
# Exits 4 (reason on stderr) when the kernel image or its headers are not
# installed, 1 (the build log on stderr) when the build fails.
#
# Usage: kmod-build.sh SERIES NAME
set -eu

. "$(dirname "$0")/host-lib.sh"
host_kernel "$1" || exit 4
out=$repo/selftests/build/$2/$kver
if ! host_build_ko "$out" "$kdir"; then
	sed 's/^/# /' "$out/build.log" >&2
	echo "cannot build lmig.ko for $kver" >&2
	exit 1
fi
echo "$kernel $kver $out/lmig.ko"
