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
top=$(cd "$here/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/lmig-holemap.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# The trackers on a shared object need the mapping watch (eBPF): bpf/ is
# built first and its build/probes.mk says how to build and link it.
make -s -C "$top/bpf" >"$work/bpf.log" 2>&1 || { cat "$work/bpf.log" >&2; exit 1; }
probes_cflags=$(sed -n 's/^PROBES_CFLAGS := //p' "$top/bpf/build/probes.mk")
probes_ldlibs=$(sed -n 's/^PROBES_LDLIBS := //p' "$top/bpf/build/probes.mk")
# shellcheck disable=SC2086
${CC:-cc} -O2 -std=gnu11 -D_GNU_SOURCE -I"$top/include" -I"$top/user" -I"$top/bpf" \
	$probes_cflags -o "$work/holemap" \
	"$here/holemap.c" "$top/user/live/track.c" "$top/user/live/track_scan.c" \
	"$top/user/live/track_uffd.c" "$top/user/live/track_softdirty.c" "$top/user/live/track_kmod.c" \
	"$top/user/live/mapwatch.c" "$top/user/live/mapwatch_policy.c" \
	"$top/user/host/procfs.c" "$top/user/chan/codec.c" "$top/user/lib/err.c" -llz4 -lxxhash -lm \
	$probes_ldlibs ||
	{ echo "holemap.sh: cannot build holemap.c" >&2; exit 1; }
echo
echo "### Object check per harvest ($(uname -r), $(nproc) CPUs)"
echo
"$work/holemap" "${HOLEMAP_MIB:-1024}" "${HOLEMAP_RUNS:-5}"
