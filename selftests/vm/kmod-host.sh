#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build lmig.ko for Debian's newest installed kernel of a
# series (6.1, 6.12) and run its selftests in a VM booting that kernel
# (vm/kmod.sh).  Prints the VM's output (TAP) and exits with its status,
# or 4 (with the reason on stderr) when the kernel image or its headers
# are not installed.
#
# With KO, that module is tested instead of one built here (a module that
# DKMS built, /var/lib/dkms/lmig/VERSION/KVER/x86_64/module/lmig.ko.xz):
# it must have been built for the series' kernel (its vermagic), and a
# compressed one is decompressed first, as the reload test hands the file
# to finit_module() as is.
#
# Usage: kmod-host.sh SERIES [KO]
set -eu

. "$(dirname "$0")/host-lib.sh"
host_kernel "$1" || exit 4
out=$repo/selftests/build/kmod/$kver
if [ $# -gt 1 ]; then
	given=$2
	mkdir -p "$out"
	ko=$out/given.ko
	case $given in
	*.ko.xz) xz -dc "$given" >"$ko" ;;
	*.ko.zst) zstd -qdc "$given" >"$ko" ;;
	*.ko.gz) gzip -dc "$given" >"$ko" ;;
	*) cp "$given" "$ko" ;;
	esac || { echo "not ok - read $given"; exit 1; }
	vermagic=$(/sbin/modinfo -F vermagic "$ko" | cut -d ' ' -f 1)
	if [ "$vermagic" != "$kver" ]; then
		echo "not ok - $given is built for '$vermagic', not $kver"
		exit 1
	fi
	echo "ok - given lmig.ko for $kver: $given (version $(/sbin/modinfo -F version "$ko"))"
else
	if ! host_build_ko "$out" "$kdir"; then
		sed 's/^/# /' "$out/build.log"
		echo "not ok - build lmig.ko for $kver"
		exit 1
	fi
	grep -v '^Skipping BTF' "$out/build.log" | sed 's/^/# build: /' || true
	echo "ok - build lmig.ko for $kver"
	ko=$out/lmig.ko
fi
KERNEL=$kernel KVER=$kver exec sh "$here/run-in-vm.sh" -v "$here/kmod.sh" "$ko" \
	"$repo/selftests/build/kmod/test_lmig_kmod" "$repo/selftests/build/kmod/test_lmig_nolost"
