#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Builds the Debian packages lmig and lmig-dkms (debian/, `make deb`) from
# a copy of this tree in a temporary directory: dpkg-buildpackage writes
# its results beside the source, and the build must leave the tree as it
# was.  The copy is the tree as it is, changes not yet committed included,
# without what builds leave in it.  The .deb, .buildinfo and .changes
# files end up in OUTDIR, with the build's output in OUTDIR/build.log;
# the last lines of it are shown when the build fails.
#
# Usage: build-deb.sh OUTDIR
set -eu

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmig-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
src=$tmp/lmig-$(cat "$repo/VERSION")
mkdir "$src"

if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$repo" ls-files --cached --others --exclude-standard |
		while IFS= read -r f; do [ ! -e "$repo/$f" ] || printf '%s\n' "$f"; done >"$tmp/files"
	tar -C "$repo" -cf - -T "$tmp/files" | tar -C "$src" -xf -
else
	tar -C "$repo" --exclude=.git --exclude=build -cf - . | tar -C "$src" -xf -
fi

rm -f "$out"/lmig*.deb "$out"/lmig_*.buildinfo "$out"/lmig_*.changes
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -n 30 "$out/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
	exit 1
fi
mv "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes "$out"/
ls "$out"/*.deb
