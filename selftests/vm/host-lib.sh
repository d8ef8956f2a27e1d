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

# host_dkms_ko DIR KVER: lmig.ko built by DKMS for KVER the way a host
# with the module's installed source builds it: the source laid out as
# `make install` puts it in /usr/src/lmig-VERSION (kmod/, the uapi
# header, VERSION, dkms.conf with the release), then `dkms add` and `dkms
# build -k KVER` in a private tree (--dkmstree, --sourcetree, --installtree
# in a temporary directory named after DIR, removed on return), so the
# machine's /var/lib/dkms, /usr/src and /lib/modules are never written.
# DKMS signs what it builds and would make /var/lib/dkms/mok.key for
# that: it is pointed at a key in the temporary directory instead (unless
# /etc/dkms/framework.conf names the host's own key).
#
# DIR/lmig.ko (decompressed: the reload test hands the file to
# finit_module() as is), DIR/build.log (DKMS's output, and its make.log
# when the build fails), and DIR/dkms.ko: the module as DKMS left it.
# Returns 1 when the build fails, 3 (the reason in DIR/build.log) when
# DKMS cannot run here: dkms not installed, or not root.
host_dkms_ko() (
	mkdir -p "$1"
	rm -f "$1/lmig.ko" "$1"/dkms.ko* "$1/build.log"
	if ! command -v dkms >/dev/null 2>&1; then
		echo "dkms is not installed (scripts/install-deps.sh check installs it)" >"$1/build.log"
		exit 3
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "dkms builds as root only" >"$1/build.log"
		exit 3
	fi
	ver=$(cat "$repo/VERSION")
	t=$(mktemp -d "${TMPDIR:-/tmp}/lmig-dkms-$(basename "$(dirname "$1")").XXXXXX") || exit 1
	trap 'rm -rf "$t"' EXIT
	trap 'exit 130' INT TERM
	src=$t/src/lmig-$ver
	mkdir -p "$src/kmod" "$src/include/uapi/linux" "$t/dkms" "$t/modules" "$t/tmp"
	for f in "$repo"/kmod/*.c "$repo"/kmod/*.h "$repo"/kmod/Makefile; do
		case $f in *.mod.c) continue ;; esac
		cp "$f" "$src/kmod/"
	done
	cp "$repo/include/uapi/linux/lmig.h" "$src/include/uapi/linux/"
	cp "$repo/VERSION" "$src/VERSION"
	sed "s/#MODULE_VERSION#/$ver/" "$repo/dkms.conf" >"$src/dkms.conf"
	export TMPDIR="$t/tmp" mok_signing_key="$t/mok.key" mok_certificate="$t/mok.pub"
	trees="--dkmstree $t/dkms --sourcetree $t/src --installtree $t/modules"
	{
		dkms --version
		dkms add -m lmig -v "$ver" $trees &&
			nice -n 10 dkms build -m lmig -v "$ver" -k "$2" \
				--kernelsourcedir "/lib/modules/$2/build" $trees
	} >"$1/build.log" 2>&1 || {
		cat "$t/dkms/lmig/$ver/build/make.log" >>"$1/build.log" 2>/dev/null
		exit 1
	}
	ko=$(ls "$t/dkms/lmig/$ver/$2"/*/module/lmig.ko* 2>/dev/null | head -n 1)
	[ -n "$ko" ] || { echo "dkms build left no lmig.ko" >>"$1/build.log"; exit 1; }
	cp "$ko" "$1/dkms.ko${ko##*/lmig.ko}"
	case $ko in
	*.ko.xz) xz -dc "$ko" ;;
	*.ko.zst) zstd -qdc "$ko" ;;
	*.ko.gz) gzip -dc "$ko" ;;
	*) cat "$ko" ;;
	esac >"$1/lmig.ko" || exit 1
)
