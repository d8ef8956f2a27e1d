#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Builds the QEMU test guest's initramfs: guest.c compiled statically as
# its /init, nothing else.  Rebuilt only when guest.c or this script is
# newer than the archive.  Prints the archive's path.
#
# Usage: mkguest.sh [OUTDIR]   (default: selftests/build/qemu)
# Exit status 4: gcc's static libc or cpio is missing (the reason on stderr).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../build/qemu}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cpio_file=$out/guest.cpio

if [ -s "$cpio_file" ] && [ "$cpio_file" -nt "$here/guest.c" ] && [ "$cpio_file" -nt "$0" ]; then
	echo "$cpio_file"
	exit 0
fi
command -v cpio >/dev/null || { echo "mkguest: cpio is not installed" >&2; exit 4; }
stage=$(mktemp -d "$out/stage.XXXXXX")
trap 'rm -rf "$stage" "$stage.cpio"' EXIT
if ! ${CC:-gcc} -O2 -static -Wall -Wextra -o "$stage/init" "$here/guest.c" 2>"$stage.err"; then
	echo "mkguest: cannot build a static guest.c: $(head -n 3 "$stage.err" | tr '\n' ' ')" >&2
	rm -f "$stage.err"
	exit 4
fi
rm -f "$stage.err"
mkdir "$stage/dev" "$stage/proc"
(cd "$stage" && find . | cpio --quiet -o -H newc) >"$stage.cpio"
mv "$stage.cpio" "$cpio_file"
echo "$cpio_file"
