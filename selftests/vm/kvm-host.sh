#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build lmig.ko for Debian's 6.1 kernel (vm/kmod-build.sh)
# and run vm/kvm.sh in a VM booting that kernel, with the module's path as
# its ko= argument.  When the kernel's headers or image are missing the
# VM runs without the module (the default kernel of run-in-vm.sh) and the
# first line is "kmod skip REASON"; when the build fails, "kmod error ...".
# Prints kvm.sh's lines and exits with run-in-vm.sh's status.
#
# Usage: kvm-host.sh [SERIES]   (default 6.1)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
series=${1:-6.1}
build=$(mktemp)
trap 'rm -f "$build"' EXIT

rc=0
built=$(sh "$here/kmod-build.sh" "$series" kmod-kvm 2>"$build") || rc=$?
case $rc in
0)
	set -- $built
	KERNEL=$1 KVER=$2 sh "$here/run-in-vm.sh" -v "$here/kvm.sh" "ko=$3"
	;;
4)
	echo "kmod skip $(tail -n 1 "$build")"
	sh "$here/run-in-vm.sh" -v "$here/kvm.sh"
	;;
*)
	sed 's/^/# /' "$build" >&2
	echo "kmod error cannot build lmig.ko for $series: $(tail -n 1 "$build")"
	sh "$here/run-in-vm.sh" -v "$here/kvm.sh"
	;;
esac
