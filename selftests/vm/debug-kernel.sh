#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: build, or reuse, the debug kernel of `make vmcheck-debug`:
# Debian's linux-source-6.1 configured with allnoconfig plus
# debug-kernel.config (KASAN, lockdep, DEBUG_VM, atomic-sleep checks and
# only what the VM harness needs, all built in).  Prints one line,
# "KERNEL KVER KDIR KMODDIR" (the bzImage, its release, the build tree to build
# lmig.ko against with `make -C kmod KDIR=...`, and the modules directory
# for run-in-vm.sh's KMODDIR: no module files, the lists of built-in ones).
#
# The build is kept in LMIG_DEBUG_KERNEL_DIR (default
# /var/cache/lmig/debug-kernel, or build/debug-kernel in the repository
# when /var/cache/lmig cannot be written).  A stamp holds the key of the
# last good build: the source package's version, the compiler's and the
# fragment's settings (comments do not count).  A new key reconfigures and
# rebuilds incrementally; a new source version starts over.  One build at a
# time: a lock file in that directory serialises concurrent callers.
#
# Exits 4 with one line on stderr naming what is missing (the source
# tarball, a build tool or header), 1 when the build fails (its log's
# tail on stderr).  The compile runs at nice 15 with DEBUG_KERNEL_JOBS
# jobs (default 2).
#
# Usage: debug-kernel.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tar=${LMIG_KSRC_TAR:-/usr/src/linux-source-6.1.tar.xz}
frag=$here/debug-kernel.config
jobs=${DEBUG_KERNEL_JOBS:-2}

missing() {
	echo "debug-kernel: missing $* (as root: sh scripts/install-deps.sh debug)" >&2
	exit 4
}

[ -r "$tar" ] || missing "$tar (package linux-source-6.1)"
miss=""
for t in gcc make bc flex bison perl xz flock; do
	command -v "$t" >/dev/null 2>&1 || miss="$miss $t"
done
[ -e /usr/include/gelf.h ] || miss="$miss libelf-dev"
[ -e /usr/include/openssl/opensslv.h ] || miss="$miss libssl-dev"
[ -z "$miss" ] || missing "the build tools:$miss"

cache=${LMIG_DEBUG_KERNEL_DIR:-}
if [ -z "$cache" ]; then
	cache=/var/cache/lmig/debug-kernel
	mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=$repo/build/debug-kernel
fi
mkdir -p "$cache" || { echo "debug-kernel: cannot create $cache" >&2; exit 4; }
cache=$(cd "$cache" && pwd)
src=$cache/linux-source-6.1
obj=$cache/obj
log=$cache/build.log

version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null ||
	stat -c '%s-%Y' "$tar")
# Only the settings matter, in any order.
settings=$(sed -e 's/[[:space:]]*$//' -e '/^$/d' -e '/^#[[:space:]]*CONFIG_/!{/^#/d}' "$frag" | sort)
key=$(printf '%s\n%s\n%s\n' "$version" "$(gcc -dumpfullversion)" "$settings" |
	sha256sum | cut -c1-16)

exec 9>"$cache/lock"
if ! flock -n 9; then
	echo "debug-kernel: waiting for another build in $cache" >&2
	flock 9
fi

if [ -s "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$key" ] &&
	[ -s "$obj/arch/x86/boot/bzImage" ]; then
	kver=$(cat "$obj/include/config/kernel.release")
	echo "debug-kernel: reusing $kver in $obj (key $key)" >&2
	echo "$obj/arch/x86/boot/bzImage $kver $obj $cache/modules/lib/modules/$kver"
	exit 0
fi

t0=$(date +%s)
if [ "$(cat "$src.version" 2>/dev/null)" != "$version" ]; then
	echo "debug-kernel: unpacking linux-source-6.1 $version into $cache" >&2
	rm -rf "$src" "$src.version" "$obj" "$cache/modules" "$cache/stamp"
	tar -xJf "$tar" -C "$cache" || { echo "debug-kernel: cannot unpack $tar" >&2; exit 1; }
	[ -e "$src/Makefile" ] || { echo "debug-kernel: $tar has no linux-source-6.1/" >&2; exit 1; }
	echo "$version" >"$src.version"
fi
rm -f "$cache/stamp"
mkdir -p "$obj"

# allnoconfig with the fragment as its starting point: whatever the
# fragment does not name stays off.
if ! make -s -C "$src" O="$obj" KCONFIG_ALLCONFIG="$frag" allnoconfig >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	echo "debug-kernel: configuring failed (log: $log)" >&2
	exit 1
fi
# A setting Kconfig dropped (an unmet dependency) is a broken fragment.
bad=$(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*=.*\)$/\1/p; s/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1=n/p' "$frag" |
	while IFS= read -r l; do
		case $l in
		*=n) ! grep -q "^${l%=n}=" "$obj/.config" || echo "${l%=n}" ;;
		*) grep -qxF "$l" "$obj/.config" || echo "${l%%=*}" ;;
		esac
	done | tr '\n' ' ')
if [ -n "$bad" ]; then
	echo "debug-kernel: Kconfig did not keep these settings of $frag: $bad(unmet dependencies)" >&2
	exit 1
fi

echo "debug-kernel: building in $obj (nice 15, -j$jobs; log: $log)" >&2
if ! nice -n 15 make -C "$obj" -j"$jobs" >>"$log" 2>&1; then
	grep -E 'error|Error' "$log" | head -n 20 >&2
	tail -n 10 "$log" >&2
	echo "debug-kernel: the build failed (log: $log)" >&2
	exit 1
fi
kver=$(cat "$obj/include/config/kernel.release")
# No module files, but modules.builtin and the rest modprobe reads: in
# the VM, `modprobe zram` (built in) must succeed as it does on Debian.
rm -rf "$cache/modules"
if ! make -C "$obj" INSTALL_MOD_PATH="$cache/modules" modules_install >>"$log" 2>&1 ||
	[ ! -e "$cache/modules/lib/modules/$kver/modules.builtin" ]; then
	tail -n 10 "$log" >&2
	echo "debug-kernel: modules_install failed (log: $log)" >&2
	exit 1
fi
echo "$key" >"$cache/stamp"
echo "debug-kernel: built $kver in $(($(date +%s) - t0)) s" >&2
echo "$obj/arch/x86/boot/bzImage $kver $obj $cache/modules/lib/modules/$kver"
