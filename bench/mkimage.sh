#!/bin/sh
# Makes one benchmark memory image of exactly SIZE bytes.
#
#   mkimage.sh random   SIZE OUT        incompressible: bytes from /dev/urandom
#   mkimage.sh binary   SIZE OUT        code and data as found in a guest: the
#                                       system's libraries and executables,
#                                       concatenated, repeated if short
#   mkimage.sh halfzero SIZE OUT SRC    64 KiB runs of zero pages alternating
#                                       with 64 KiB runs of SRC's non-zero
#                                       pages: exactly half the pages are zero
#
# SIZE is in bytes; halfzero needs a multiple of 128 KiB.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

die() {
	echo "mkimage: $*" >&2
	exit 1
}

# The files that make up the binary image, NUL-separated, in a stable order
# so two runs on one machine build the same image.  -type f skips symlinks,
# which would only repeat files already listed.
binary_files() {
	for d in /usr/lib/*-linux-gnu; do
		[ -d "$d" ] && find "$d" -type f -name '*.so*' -print0
	done
	find /usr/bin /usr/sbin /usr/libexec /usr/lib/gcc -type f -print0 2>/dev/null
}

make_random() {
	head -c "$1" /dev/urandom >"$2"
}

make_binary() {
	list=$(mktemp)
	binary_files | sort -z >"$list"
	[ -s "$list" ] || { rm -f "$list"; die "no libraries or executables found"; }
	# Repeat the whole set until head has SIZE bytes.  When head exits,
	# cat dies of SIGPIPE and xargs fails, which ends the loop; a file cat
	# cannot read also ends it, and the size check below catches that.
	while xargs -0 cat -- <"$list" 2>/dev/null; do :; done | head -c "$1" >"$2"
	rm -f "$list"
}

make_halfzero() {
	[ -r "$3" ] || die "halfzero needs a readable SRC image"
	tmp=$(mktemp -d)
	# Built here, not by user/Makefile: it is a benchmark tool, not part of lmig.
	if ! ${CC:-cc} -O2 -Wall -o "$tmp/halfzero" "$here/halfzero.c"; then
		rm -rf "$tmp"
		die "cannot build halfzero.c"
	fi
	"$tmp/halfzero" "$3" "$2" "$1" || { rm -rf "$tmp"; exit 1; }
	rm -rf "$tmp"
}

[ $# -ge 3 ] || die "usage: mkimage.sh random|binary|halfzero SIZE OUT [SRC]"
kind=$1 size=$2 out=$3
case $kind in
random) make_random "$size" "$out" ;;
binary) make_binary "$size" "$out" ;;
halfzero) make_halfzero "$size" "$out" "${4:-}" ;;
*) die "unknown image kind '$kind'" ;;
esac

got=$(stat -c %s "$out")
[ "$got" = "$size" ] || die "$out: $got bytes, wanted $size"
