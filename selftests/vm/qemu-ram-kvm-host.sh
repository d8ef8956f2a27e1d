#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build lmig.ko for Debian's 6.1 kernel (vm/kmod-build.sh)
# and run vm/qemu-ram-kvm.sh in a VM booting that kernel, with the
# module's path as its ko= argument.  The first line is "qram build_s
# S", the build's seconds.  When the kernel's headers or image are
# missing the VM runs without the module (run-in-vm.sh's default kernel)
# after a line "qram module skip REASON"; when the build fails, "qram
# module error ...".  Prints the VM's lines and exits with run-in-vm.sh's
# status.
#
# Usage: qemu-ram-kvm-host.sh [ARG...]   (more of qemu-ram-kvm.sh's arguments)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$(mktemp "${TMPDIR:-/tmp}/lmig-qram-kvm-build.XXXXXX")
trap 'rm -f "$build"' EXIT

rc=0
t0=$(date +%s.%N)
built=$(sh "$here/kmod-build.sh" 6.1 kmod-qram-kvm 2>"$build") || rc=$?
echo "qram build_s $(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')"
case $rc in
0)
	kernel=${built%% *}
	ko=${built##* }
	kver=${built#* }
	kver=${kver%% *}
	KERNEL=$kernel KVER=$kver sh "$here/run-in-vm.sh" -v "$here/qemu-ram-kvm.sh" "ko=$ko" "$@"
	;;
4)
	echo "qram module skip $(tail -n 1 "$build")"
	sh "$here/run-in-vm.sh" -v "$here/qemu-ram-kvm.sh" "$@"
	;;
*)
	sed 's/^/# /' "$build" >&2
	echo "qram module error cannot build lmig.ko for 6.1: $(tail -n 1 "$build")"
	sh "$here/run-in-vm.sh" -v "$here/qemu-ram-kvm.sh" "$@"
	;;
esac
