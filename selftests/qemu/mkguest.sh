#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Builds the QEMU test guest's initramfs: guest.c compiled statically as
# its /init, nothing else.  Rebuilt only when guest.c or this script is
# newer than the archive.  Prints the archive's path.
#
# With --smp it builds the two-vCPU guest without an operating system
# instead (smp/smpguest.c and smp/start.S, a Multiboot image for QEMU's
# -kernel, 32-bit, no libc) and prints the path of smpguest.elf.
#
# Usage: mkguest.sh [--smp] [OUTDIR]   (default: selftests/build/qemu)
# Exit status 4: gcc's static libc, gcc's -m32 or cpio is missing (the
# reason on stderr).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
smp=0
[ "${1:-}" != --smp ] || { smp=1; shift; }
out=${1:-$here/../build/qemu}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ $smp = 1 ]; then
	elf=$out/smpguest.elf
	fresh=1
	for f in "$here"/smp/smpguest.c "$here"/smp/start.S "$here"/smp/smpguest.ld "$0"; do
		[ -s "$elf" ] && [ "$elf" -nt "$f" ] || fresh=0
	done
	if [ $fresh = 0 ]; then
		# No libgcc for -m32 here: the guest divides 64-bit numbers itself.
		if ! ${CC:-gcc} -m32 -ffreestanding -fno-pic -fno-stack-protector -mgeneral-regs-only \
			-nostdlib -static -O2 -Wall -Wextra -Wl,-T,"$here/smp/smpguest.ld" \
			-Wl,--build-id=none -Wl,--no-warn-rwx-segments -o "$elf.tmp" \
			"$here/smp/start.S" "$here/smp/smpguest.c" 2>"$elf.err"; then
			echo "mkguest: cannot build smpguest.elf (gcc -m32): $(head -n 3 "$elf.err" | tr '\n' ' ')" >&2
			rm -f "$elf.err" "$elf.tmp"
			exit 4
		fi
		rm -f "$elf.err"
		mv "$elf.tmp" "$elf"
	fi
	echo "$elf"
	exit 0
fi
cpio_file=$out/guest.cpio

if [ -s "$cpio_file" ] && [ "$cpio_file" -nt "$here/guest.c" ] && [ "$cpio_file" -nt "$0" ]; then
	echo "$cpio_file"
	exit 0
fi
command -v cpio >/dev/null || { echo "mkguest: cpio is not installed" >&2; exit 4; }
stage=$(mktemp -d "$out/stage.XXXXXX")
trap 'rm -rf "$stage" "$stage.cpio"' EXIT
if ! ${CC:-gcc} -O2 -static -pthread -Wall -Wextra -o "$stage/init" "$here/guest.c" 2>"$stage.err"; then
	echo "mkguest: cannot build a static guest.c: $(head -n 3 "$stage.err" | tr '\n' ' ')" >&2
	rm -f "$stage.err"
	exit 4
fi
rm -f "$stage.err"
mkdir "$stage/dev" "$stage/proc"
(cd "$stage" && find . | cpio --quiet -o -H newc) >"$stage.cpio"
mv "$stage.cpio" "$cpio_file"
echo "$cpio_file"
