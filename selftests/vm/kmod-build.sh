#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build lmig.ko for Debian's newest installed kernel of a
# series (6.1, 6.12), from a copy of kmod/ in selftests/build/NAME/KVER
# (host-lib.sh).  Prints one line, "KERNEL KVER KO" (the kernel image, its
# version, the built module), for run-in-vm.sh's KERNEL= and KVER= and the
# script's argument.
#
# With --dkms, DKMS builds it (host_dkms_ko: `dkms build -k KVER` from the
# source as `make install` lays it out, in a private DKMS tree), and one
# line on stderr says how it was built, in how long, and the module's
# vermagic and version, which must be KVER and the VERSION file's release.
# When DKMS cannot run here (not installed, not root), the plain kbuild
# builds it instead and that line says so, starting "plain kbuild".
#
# Exits 4 (reason on stderr) when the kernel image or its headers are not
# installed, 1 (the build log on stderr) when the build fails.
#
# Usage: kmod-build.sh [--dkms] SERIES NAME
set -eu

dkms=
if [ "${1:-}" = --dkms ]; then
	dkms=1
	shift
fi
. "$(dirname "$0")/host-lib.sh"
host_kernel "$1" || exit 4
out=$repo/selftests/build/$2/$kver
start=$(date +%s)
how=
if [ -n "$dkms" ]; then
	rc=0
	host_dkms_ko "$out" "$kver" || rc=$?
	if [ $rc = 3 ]; then
		how="plain kbuild, not DKMS: $(cat "$out/build.log")"
	elif [ $rc != 0 ]; then
		sed 's/^/# /' "$out/build.log" >&2
		echo "dkms build -k $kver failed" >&2
		exit 1
	else
		how="DKMS: $(head -n 1 "$out/build.log") build -k $kver in a private tree"
	fi
fi
if [ -z "$dkms" ] || [ "$how" != "${how#plain}" ]; then
	if ! host_build_ko "$out" "$kdir"; then
		sed 's/^/# /' "$out/build.log" >&2
		echo "cannot build lmig.ko for $kver" >&2
		exit 1
	fi
fi
if [ -n "$dkms" ]; then
	magic=$(/sbin/modinfo -F vermagic "$out/lmig.ko" | cut -d ' ' -f 1)
	mver=$(/sbin/modinfo -F version "$out/lmig.ko")
	ver=$(cat "$repo/VERSION")
	if [ "$magic" != "$kver" ] || [ "$mver" != "$ver" ]; then
		echo "lmig.ko built by $how has vermagic '$magic' and version '$mver'," \
			"not $kver and $ver" >&2
		exit 1
	fi
	echo "built by $how ($(($(date +%s) - start)) s): vermagic $magic, version $mver" >&2
fi
echo "$kernel $kver $out/lmig.ko"
