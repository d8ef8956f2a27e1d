#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# lmig recv's output on a filesystem without O_TMPFILE: overlayfs before
# Linux 6.6.  Run inside the VM (6.1 kernel, overlay module) by
# vm/live-outfile.sh for selftests/test_vm.  lmig then creates
# PATH.partial itself, new (O_EXCL), never through a link, and removes it
# on every failure.  Cases, each with a 4 MiB random image on loopback:
#
#   plain   a migration completes
#   link    a symbolic link to a victim file waits at PATH.partial
#   term    the receiver gets SIGTERM mid-transfer (--bandwidth 2M)
#   killed  the sender is SIGKILLed mid-transfer
#
# Prints, per case NAME:
#
#   tmpfile yes|no       whether O_TMPFILE works on the overlay (once)
#   NAME recv-rc N       recv's exit status
#   NAME recv-err TEXT   recv's stderr, when it wrote any
#   NAME cmp same|differ the image against the source (plain)
#   NAME mode MODE       PATH's mode and type (plain): stat -c %f
#   NAME partial-seen yes|no   PATH.partial existed mid-transfer (term, killed)
#   NAME partial-left yes|no   PATH.partial exists at the end
#   NAME out-left yes|no       PATH exists at the end (failures)
#   NAME victim same|changed   the link's target (link)
#   NAME error TEXT      a case that could not run
set -u

. "$(dirname "$0")/guest-lib.sh"
. "$here/hang.sh"
tmp=$(mktemp -d)
ovl=$tmp/ovl
trap 'umount "$ovl" 2>/dev/null; umount "$tmp/fs" 2>/dev/null; rm -rf "$tmp"' EXIT

mkdir -p "$tmp/fs" "$ovl"
if ! mount -t tmpfs lmig-outfile "$tmp/fs" ||
   ! mkdir -p "$tmp/fs/lower" "$tmp/fs/upper" "$tmp/fs/work" ||
   ! mount -t overlay overlay -o "lowerdir=$tmp/fs/lower,upperdir=$tmp/fs/upper,workdir=$tmp/fs/work" "$ovl"; then
	echo "plain error cannot mount an overlay"
	exit 0
fi
if python3 -c 'import os, sys; os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o600)' "$ovl" 2>/dev/null; then
	echo "tmpfile yes"
else
	echo "tmpfile no"
fi
src=$tmp/fs/src.img
head -c 4194304 /dev/urandom >"$src"
out=$ovl/out.img

yesno() { if [ -e "$1" ] || [ -L "$1" ]; then echo yes; else echo no; fi; }

# recv_start NAME: lmig recv into $out in the background; sets rpid, port.
recv_start() {
	rm -f "$tmp/port"
	"$lmig" recv --listen 127.0.0.1:0 --ready-fd 3 --out "$out" --no-sync --timeout 30 \
		3>"$tmp/port" 2>"$tmp/$1.rerr" >/dev/null &
	rpid=$!
	wait_file "$tmp/port"
	port=$(cat "$tmp/port")
}

recv_end() { # NAME
	wait "$rpid"
	echo "$1 recv-rc $?"
	[ ! -s "$tmp/$1.rerr" ] || echo "$1 recv-err $(tr '\n' ' ' <"$tmp/$1.rerr")"
}

# plain
recv_start plain
bounded plain 60 "$lmig" send --mem "$src" --to "127.0.0.1:$port" --timeout 30 >/dev/null 2>&1
recv_end plain
if cmp -s "$src" "$out"; then echo "plain cmp same"; else echo "plain cmp differ"; fi
echo "plain mode $(stat -c %f "$out")"
echo "plain partial-left $(yesno "$out.partial")"
rm -f "$out"

# link
echo "victim" >"$tmp/fs/victim"
ln -s "$tmp/fs/victim" "$out.partial"
recv_start link
bounded link 60 "$lmig" send --mem "$src" --to "127.0.0.1:$port" --timeout 30 >/dev/null 2>&1
recv_end link
if [ "$(cat "$tmp/fs/victim")" = victim ]; then echo "link victim same"; else echo "link victim changed"; fi
echo "link out-left $(yesno "$out")"
rm -f "$out.partial" "$out"

# term and killed: a transfer of 2 s, interrupted after 0.5 s
for name in term killed; do
	recv_start $name
	"$lmig" send --mem "$src" --to "127.0.0.1:$port" --bandwidth 2M --timeout 30 \
		>/dev/null 2>&1 &
	spid=$!
	sleep 0.5
	echo "$name partial-seen $(yesno "$out.partial")"
	if [ $name = term ]; then kill -TERM "$rpid"; else kill -KILL "$spid"; fi
	recv_end $name
	wait "$spid" 2>/dev/null
	echo "$name partial-left $(yesno "$out.partial")"
	echo "$name out-left $(yesno "$out")"
	rm -f "$out.partial" "$out"
done
