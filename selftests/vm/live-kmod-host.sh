#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build lmig.ko for Debian's SERIES kernel (host-lib.sh) and
# run vm/live.sh's kmod cases (kmod, kmod-thp, kmod-churn, kmod-holes,
# kmod-madvise, kmod-pwrite, kmod-shortmaps) in a VM booting that kernel:
# live migrations with `lmig send --tracker kmod`.  Prints live.sh's lines
# and exits with the VM's status, or 4 (reason on stderr) when the kernel
# image or its headers are not installed.
#
# Usage: live-kmod-host.sh [SERIES]   (default 6.1)
set -eu

. "$(dirname "$0")/host-lib.sh"
host_kernel "${1:-6.1}" || exit 4
out=$repo/selftests/build/kmod-live/$kver
if ! host_build_ko "$out" "$kdir"; then
	sed 's/^/# /' "$out/build.log" >&2
	echo "kmod error cannot build lmig.ko for $kver"
	exit 1
fi
KERNEL=$kernel KVER=$kver exec sh "$here/run-in-vm.sh" "$here/live.sh" "ko=$out/lmig.ko" kmod kmod-thp kmod-churn kmod-holes \
	kmod-madvise kmod-pwrite kmod-shortmaps
