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

. "$(dirname "$0")/host-lib.sh"
host_kernel "$1" || exit 4
out=$repo/selftests/build/kmod/$kver
if ! host_build_ko "$out" "$kdir"; then
	sed 's/^/# /' "$out/build.log"
	echo "not ok - build lmig.ko for $kver"
	exit 1
fi
grep -v '^Skipping BTF' "$out/build.log" | sed 's/^/# build: /' || true
echo "ok - build lmig.ko for $kver"
KERNEL=$kernel KVER=$kver exec sh "$here/run-in-vm.sh" -v "$here/kmod.sh" "$out/lmig.ko" \
	"$repo/selftests/build/kmod/test_lmig_kmod" "$repo/selftests/build/kmod/test_lmig_nolost"
