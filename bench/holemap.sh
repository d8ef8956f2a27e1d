#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# What the trackers' object check costs per harvest (bench/holemap.c): the
# data/hole map walk of a memfd, fully data and with holes, next to reading
# and hashing its data pages (a harvest after the object's timestamps
# changed).  Prints a Markdown table.
#
# Knobs (environment): HOLEMAP_MIB (default 1024), HOLEMAP_RUNS (5).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/lmig-holemap.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# The trackers on a shared object need the mapping watch (eBPF): liblmig.a
# and libbpf (bench_cc).
bench_cc "$work/holemap" "$here/holemap.c" ||
	{ echo "holemap.sh: cannot build holemap.c" >&2; exit 1; }
echo
echo "### Object check per harvest ($(uname -r), $(nproc) CPUs)"
echo
"$work/holemap" "${HOLEMAP_MIB:-1024}" "${HOLEMAP_RUNS:-5}"
