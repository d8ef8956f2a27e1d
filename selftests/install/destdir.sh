#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# make install and make uninstall as a test (make check), into a DESTDIR
# in a temporary directory, once with PREFIX=/usr (as debian/rules) and
# once with the default PREFIX (/usr/local).  Each installed file must be
# where Documentation/install.md says, with its mode, and equal to its
# source byte for byte (dkms.conf: with the release written into it);
# the installed lmig must report the release of the VERSION file.  After
# make uninstall no file or link may remain and lmig's own directories
# must be gone.  Neither may change the tree (git status before and
# after).  Prints TAP and the kselftest "# Totals:" line.  About 5 s.
#
# Usage: destdir.sh
set -u

repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmig-destdir.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
ver=$(cat "$repo/VERSION")
. "$repo/selftests/lib/tap.sh"

# check_file DEST SRC MODE: DEST is SRC's copy with mode MODE; prints a
# line naming what is wrong, or nothing.
check_file() {
	if [ ! -f "$1" ]; then
		echo "${1#"$d"} is missing"
	elif [ "$(stat -c %a "$1")" != "$3" ]; then
		echo "${1#"$d"} has mode $(stat -c %a "$1"), not $3"
	elif [ -n "$2" ] && ! cmp -s "$1" "$2"; then
		echo "${1#"$d"} differs from ${2#"$repo"/}"
	fi
}

tree_state() {
	git -C "$repo" status --porcelain --untracked-files=all 2>/dev/null
}

echo "TAP version 13"
echo "1..5"
before=$(tree_state)
for prefix in /usr /usr/local; do
	d=$tmp/dest$(echo "$prefix" | tr / _)
	if [ "$prefix" = /usr ]; then
		set -- PREFIX=/usr
	else
		set --
	fi
	udev=$(pkg-config --variable=udevdir udev 2>/dev/null) || udev=
	[ -n "$udev" ] || udev=/lib/udev
	if ! make -s -C "$repo" install DESTDIR="$d" "$@" >"$tmp/log" 2>&1; then
		result FAIL "install PREFIX=$prefix" "$(tail -n 20 "$tmp/log")"
		result FAIL "uninstall PREFIX=$prefix" "not tried"
		continue
	fi
	src=$d$prefix/src/lmig-$ver
	bad=$(
		check_file "$d$prefix/sbin/lmig" "$repo/user/lmig" 755
		check_file "$d$udev/rules.d/60-lmig.rules" "$repo/udev/60-lmig.rules" 644
		for f in "$repo"/README.md "$repo"/Documentation/*.md; do
			check_file "$d$prefix/share/doc/lmig/${f##*/}" "$f" 644
		done
		for f in "$repo"/build/man/*.8; do
			[ ! -e "$f" ] || check_file "$d$prefix/share/man/man8/${f##*/}" "$f" 644
		done
		[ ! -e "$repo/completion/lmig" ] ||
			check_file "$d$prefix/share/bash-completion/completions/lmig" \
				"$repo/completion/lmig" 644
		for f in "$repo"/kmod/*.[ch] "$repo"/kmod/Makefile; do
			case $f in *.mod.c) continue ;; esac
			check_file "$src/kmod/${f##*/}" "$f" 644
		done
		check_file "$src/include/uapi/linux/lmig.h" "$repo/include/uapi/linux/lmig.h" 644
		check_file "$src/VERSION" "$repo/VERSION" 644
		sed "s/#MODULE_VERSION#/$ver/" "$repo/dkms.conf" >"$tmp/dkms.conf"
		check_file "$src/dkms.conf" "$tmp/dkms.conf" 644
		grep -qx "PACKAGE_VERSION=\"$ver\"" "$src/dkms.conf" ||
			echo "dkms.conf does not say PACKAGE_VERSION=\"$ver\""
		out=$("$d$prefix/sbin/lmig" version 2>&1 | head -n 1)
		case $out in
		"lmig $ver, "* | "lmig $ver-"*) ;;
		*) echo "installed lmig version says '$out', VERSION is $ver" ;;
		esac
	)
	files=$(find "$d" ! -type d | wc -l)
	if [ -z "$bad" ]; then
		result OK "install PREFIX=$prefix: $files files where they belong"
	else
		result FAIL "install PREFIX=$prefix" "$bad"
	fi

	if ! make -s -C "$repo" uninstall DESTDIR="$d" "$@" >"$tmp/log" 2>&1; then
		result FAIL "uninstall PREFIX=$prefix" "$(tail -n 20 "$tmp/log")"
		continue
	fi
	left=$(cd "$d" && find . ! -type d; for o in "$prefix/share/doc/lmig" "$prefix/src/lmig-$ver"; do
		[ ! -e ".$o" ] || echo ".$o"; done)
	if [ -z "$left" ]; then
		result OK "uninstall PREFIX=$prefix leaves nothing of lmig"
	else
		result FAIL "uninstall PREFIX=$prefix" "left behind:" $left
	fi
done
after=$(tree_state)
if [ "$before" = "$after" ]; then
	result OK "the tree is as it was"
else
	result FAIL "the tree is as it was" "git status before:" "$before" "after:" "$after"
fi

tap_totals
