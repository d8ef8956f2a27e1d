#!/bin/sh
# make demo: a cold migration of a generated 1 GiB memory image over loopback.
# The image looks like guest memory: a quarter zero pages, the rest program
# text and data (system libraries), so every page encoding is exercised.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
lmig=$top/user/lmig
size=${DEMO_SIZE:-1073741824}
dir=$(mktemp -d /dev/shm/lmig-demo.XXXXXX)
src=$dir/guest.mem
dst=$dir/received.mem
rpid=

cleanup() {
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

echo "demo: building a $((size >> 20)) MiB image at $src"
python3 "$top/scripts/mkimage.py" binary-zero "$size" "$src"

echo "demo: lmig recv --listen 127.0.0.1:0 --out $dst"
"$lmig" recv --listen 127.0.0.1:0 --out "$dst" --no-sync --ready-fd 3 \
	3>"$dir/port" >"$dir/recv.txt" 2>&1 &
rpid=$!
for _ in $(seq 50); do
	[ -s "$dir/port" ] && break
	sleep 0.1
done
port=$(cat "$dir/port")

echo "demo: lmig send --mem $src --to 127.0.0.1:$port"
"$lmig" send --mem "$src" --to "127.0.0.1:$port" --no-progress
wait "$rpid"
rpid=
cat "$dir/recv.txt"
if cmp -s "$src" "$dst"; then
	echo "demo: received image is identical to the source ($(stat -c %s "$dst") bytes)"
else
	echo "demo: received image differs from the source" >&2
	exit 1
fi
