# SPDX-License-Identifier: GPL-2.0-only
#
# Sourced by the host-side entry points of selftests/vm (kmod-build.sh,
# kmod-host.sh, live-kmod-host.sh, debug-host.sh): where the repository
# is, which Debian kernel a test boots, and lmig.ko built for it.  Each
# entry point then says how it reports a missing kernel or a failed build
# (its caller parses that) and what it runs in the VM.
#
# Sets: here (selftests/vm), repo.

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# host_kernel SERIES: Debian's newest installed kernel of SERIES (6.1,
# 6.12) and its headers: sets kernel (the image), kver and kdir (the tree
# to build modules against).  Returns 4 with the reason on stderr when the
# image or the headers are not installed.
host_kernel() {
	kernel=$(ls /boot/vmlinuz-"$1".* 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$kernel" ]; then
		echo "no /boot/vmlinuz-$1.* (scripts/install-deps.sh check installs it)" >&2
		return 4
	fi
	kver=${kernel#/boot/vmlinuz-}
	kdir=/usr/src/linux-headers-$kver
	[ -e "$kdir/Makefile" ] || kdir=/lib/modules/$kver/build
	if [ ! -e "$kdir/Makefile" ]; then
		echo "no headers for $kver (linux-headers-$kver)" >&2
		return 4
	fi
}

# host_build_ko DIR KDIR: lmig.ko built against KDIR from a copy of kmod/
# in DIR (one copy per user and kernel, so builds never share objects):
# DIR/lmig.ko.  Returns 1 when the build fails; DIR/build.log has its
# output either way.
host_build_ko() {
	mkdir -p "$1"
	rm -f "$1"/*.c "$1"/*.h
	cp "$repo"/kmod/*.c "$repo"/kmod/*.h "$repo"/kmod/Makefile "$1"/
	make -s -C "$1" KDIR="$2" LMIG_UAPI="$repo/include/uapi" LMIG_VERSION="$(cat "$repo/VERSION")" \
		>"$1/build.log" 2>&1
}
