#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Regenerates the seed corpus (corpus/HARNESS/) from real runs of lmig on
# loopback: `lmig send` to `lmig recv`, `lmig pipe send` to `pipe recv`,
# `lmig proxy send` to `proxy recv`, each through capture.py, which
# records what the sending side put on the wire.  Images are a few pages:
# zero, random (sent raw) and repetitive (lz4) pages, sent with lz4 and
# without, on one and two channels, and live (a writer keeps changing a
# page, so the sender needs more than one round).  The receivers' TLS
# seeds are the same streams with the harness's TLS flag (it seals them);
# fuzz_tls's seal pieces of them; the parsers' seeds are written here.
#
# Usage: mkcorpus.sh  (from fuzz/; LMIG=path/to/lmig, default ../user/lmig)
set -eu

cd "$(dirname "$0")"
LMIG=${LMIG:-$(cd .. && pwd)/user/lmig}
[ -x "$LMIG" ] || { echo "mkcorpus: $LMIG not built (make -C ../user)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmig-corpus.XXXXXX")
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

# A few pages of each kind: zero, random, repetitive text; the last one short.
mkimage() {
	python3 - "$1" "$2" <<-'EOF'
	import os, sys
	path, kinds = sys.argv[1], sys.argv[2]
	page = {"z": bytes(4096), "r": None,
		"t": (b"lmig fuzz seed page %d " * 200)[:4096]}
	with open(path, "wb") as f:
	    for i, k in enumerate(kinds):
	        f.write(os.urandom(4096) if k == "r" else
	                page[k].replace(b"%d", b"%04d" % i) if k == "t" else page[k])
	    f.write(os.urandom(1000))
	EOF
}

# wait_port FILE: the port a process wrote there.
wait_port() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	cat "$1"
}

# capture NAME UPSTREAM_PORT [FLAGS]: start the relay; its port in $port.
# FLAGS is the harness's first byte (fuzz_stream: 16 for pipe mode).
capture() {
	python3 capture.py "$2" "$tmp/$1.cap" "$tmp/$1.cport" "${3:-0}" </dev/null >/dev/null &
	pids="$pids $!"
	port=$(wait_port "$tmp/$1.cport")
}

# The relay ends by itself once every connection closed.
finish() {
	i=0
	while [ ! -s "$tmp/$1.cap" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	mkdir -p "corpus/$2"
	cp "$tmp/$1.cap" "corpus/$2/$1"
	echo "  corpus/$2/$1: $(wc -c <"$tmp/$1.cap") bytes"
}

# send_seed NAME KINDS SEND-OPTIONS...
send_seed() {
	name=$1 kinds=$2
	shift 2
	mkimage "$tmp/$name.img" "$kinds"
	"$LMIG" recv --listen 127.0.0.1:0 --out "$tmp/$name.out" --no-sync --no-progress \
		--accept-timeout 10 --ready-fd 3 3>"$tmp/$name.port" >/dev/null 2>"$tmp/$name.err" &
	rp=$!
	capture "$name" "$(wait_port "$tmp/$name.port")"
	"$LMIG" send --mem "$tmp/$name.img" --to "127.0.0.1:$port" --no-progress "$@" >/dev/null
	wait $rp
	cmp "$tmp/$name.img" "$tmp/$name.out"
	finish "$name" fuzz_recv
}

echo "mkcorpus: lmig send -> lmig recv"
send_seed raw1 zrtrzt --channels 1 --compress none
send_seed lz4-1 zrtrzt --channels 1 --compress lz4
send_seed lz4-2 zrtttrzzrt --channels 2 --compress lz4
send_seed zstd-1 zrtrzt --channels 1 --compress zstd
send_seed zeros zzzzzz --channels 1 --compress lz4

# Live: a writer changes pages 2 and 3 every millisecond until it is paused, so rounds follow round 0.
echo "mkcorpus: lmig send --pid (live)"
mkimage "$tmp/live.img" zrtrzt
python3 - "$tmp/live.img" <<-'EOF' &
	import mmap, os, sys, time
	f = open(sys.argv[1], "r+b")
	m = mmap.mmap(f.fileno(), 0)
	i = 0
	while True:
	    m[8192:8200] = b"%08d" % i
	    m[12288 + i % 4096] = i & 255
	    i += 1
	    time.sleep(0.001)
	EOF
writer=$!
pids="$pids $writer"
"$LMIG" recv --listen 127.0.0.1:0 --out "$tmp/live.out" --no-sync --no-progress \
	--accept-timeout 10 --ready-fd 3 3>"$tmp/live.port" >/dev/null 2>"$tmp/live.err" &
rp=$!
capture live "$(wait_port "$tmp/live.port")"
"$LMIG" send --mem "$tmp/live.img" --pid "$writer" --tracker scan --freeze signal \
	--downtime-ms 50 --max-rounds 5 --then kill --to "127.0.0.1:$port" --channels 1 \
	--compress lz4 --no-progress >/dev/null 2>"$tmp/live.serr" ||
	{ cat "$tmp/live.serr" >&2; exit 1; }
wait $rp
finish live fuzz_recv

echo "mkcorpus: lmig pipe send -> lmig pipe recv"
# pipe_seed NAME CHANNELS COMPRESS: a 53 KB stream: 20 KB random, the rest repetitive.
pipe_seed() {
	python3 -c 'import os, sys; sys.stdout.buffer.write(os.urandom(20000) + b"qemu migration stream " * 1500)' \
		>"$tmp/$1.in"
	"$LMIG" pipe recv --listen 127.0.0.1:0 --ready-fd 3 3>"$tmp/$1.port" >"$tmp/$1.out" \
		2>"$tmp/$1.err" &
	rp=$!
	capture "$1" "$(wait_port "$tmp/$1.port")" 16
	"$LMIG" pipe send --to "127.0.0.1:$port" --channels "$2" --compress "$3" <"$tmp/$1.in" 2>/dev/null
	wait $rp
	cmp "$tmp/$1.in" "$tmp/$1.out"
	finish "$1" fuzz_stream
}
pipe_seed pipe1 1 none
pipe_seed pipe2-lz4 2 lz4

echo "mkcorpus: lmig proxy send -> lmig proxy recv (two streams)"
python3 - "$tmp/dst.sock" "$tmp/dst.bytes" <<-'EOF' &
	import os, socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.bind(sys.argv[1]); s.listen(8)
	total = 0
	for _ in range(2):
	    c, _ = s.accept()
	    while True:
	        d = c.recv(65536)
	        if not d:
	            break
	        total += len(d)
	    c.close()
	open(sys.argv[2], "w").write(str(total))
	EOF
pids="$pids $!"
while [ ! -S "$tmp/dst.sock" ]; do sleep 0.05; done
"$LMIG" proxy recv --listen 127.0.0.1:0 --to "unix:$tmp/dst.sock" --ready-fd 3 \
	3>"$tmp/proxy.port" >/dev/null 2>"$tmp/proxy.err" &
rp=$!
capture proxy "$(wait_port "$tmp/proxy.port")"
"$LMIG" proxy send --listen "unix:$tmp/src.sock" --to "127.0.0.1:$port" --channels 2 \
	--streams 2 --compress lz4 --ready-fd 3 3>"$tmp/src.ready" >/dev/null 2>"$tmp/proxy.serr" &
sp=$!
wait_port "$tmp/src.ready" >/dev/null
for i in 1 2; do
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"stream %s " % sys.argv[2].encode() * 5000); s.close()' "$tmp/src.sock" $i
done
wait $sp
wait $rp
finish proxy fuzz_stream

echo "mkcorpus: lmig proxy send -> lmig proxy recv, both ways (two streams, RCREDIT)"
# The destination answers each stream with 600 KiB once it ended: the
# source credits the return direction (RCREDIT) while it writes them.
python3 - "$tmp/dstb.sock" <<-'EOF' &
	import socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.bind(sys.argv[1]); s.listen(8)
	for _ in range(2):
	    c, _ = s.accept()
	    while c.recv(65536):
	        pass
	    c.sendall(b"back " * 120000)
	    c.close()
	EOF
pids="$pids $!"
while [ ! -S "$tmp/dstb.sock" ]; do sleep 0.05; done
"$LMIG" proxy recv --listen 127.0.0.1:0 --to "unix:$tmp/dstb.sock" --ready-fd 3 \
	3>"$tmp/proxyb.port" >/dev/null 2>"$tmp/proxyb.err" &
rp=$!
capture proxy-both "$(wait_port "$tmp/proxyb.port")"
"$LMIG" proxy send --listen "unix:$tmp/srcb.sock" --to "127.0.0.1:$port" --channels 2 \
	--streams 2 --compress lz4 --ready-fd 3 3>"$tmp/srcb.ready" >/dev/null 2>"$tmp/proxyb.serr" &
sp=$!
wait_port "$tmp/srcb.ready" >/dev/null
for i in 1 2; do
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"stream %s " % sys.argv[2].encode() * 5000); s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
s.close()' "$tmp/srcb.sock" $i
done
wait $sp
wait $rp
finish proxy-both fuzz_stream
# The harness's destinations say only a few bytes back: its RCREDITs credit
# 0 bytes, so the seed runs to the end (the header checksums are the harness's).
python3 - corpus/fuzz_stream/proxy-both <<-'EOF'
	import struct, sys
	d = bytearray(open(sys.argv[1], "rb").read())
	pos, where = 1, {}
	while pos + 3 <= len(d):
	    c, n = d[pos], struct.unpack("<H", d[pos + 1:pos + 3])[0]
	    where.setdefault(c, []).extend(range(pos + 3, min(pos + 3 + n, len(d))))
	    pos += 3 + n
	for m in where.values():
	    b, i = bytes(d[k] for k in m), 0
	    while (i := b.find(b"MGSF", i)) >= 0:
	        if struct.unpack("<H", b[i + 4:i + 6])[0] == 5:
	            for k in range(8):
	                d[m[i + 24 + k]] = 0
	        i += 4
	open(sys.argv[1], "wb").write(d)
	EOF

echo "mkcorpus: the receivers with TLS (the same streams, sealed by the harnesses)"
# flags | 16 (fuzz_recv), | 32 (fuzz_stream): see the harnesses' comments.
tlsflag() {
	python3 -c 'import sys; d = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(bytes([d[0] | int(sys.argv[3])]) + d[1:])' "$@"
}
tlsflag corpus/fuzz_recv/lz4-2 corpus/fuzz_recv/lz4-2-tls 16
tlsflag corpus/fuzz_recv/live corpus/fuzz_recv/live-tls 16
tlsflag corpus/fuzz_stream/proxy corpus/fuzz_stream/proxy-tls 32
tlsflag corpus/fuzz_stream/proxy-both corpus/fuzz_stream/proxy-both-tls 32
tlsflag corpus/fuzz_stream/pipe2-lz4 corpus/fuzz_stream/pipe2-lz4-tls 32

echo "mkcorpus: TLS records (fuzz_tls) from the captured streams"
mkdir -p corpus/fuzz_tls
python3 tlsseed.py corpus/fuzz_recv/raw1 corpus/fuzz_tls/raw1
python3 tlsseed.py corpus/fuzz_stream/pipe2-lz4 corpus/fuzz_tls/pipe2-lz4 --inplace

echo "mkcorpus: what a destination says back (fuzz_stream_back)"
mkdir -p corpus/fuzz_stream_back
python3 - <<-'EOF'
	import struct
	def sframe(t, stream, n, seq, off, raw):
	    return struct.pack("<IHHIIQQIIQQ", 0x4653474d, t, 0, stream, n, seq, off, raw, 0, 0, 0)
	def sreply(t, status, stream, b, reason=b""):
	    return struct.pack("<IHHIIQ96sQ", 0x5253474d, t, status, stream, 0, b, reason, 0)
	# Checksums, hashes, digests and sequence numbers are the harness's (flags 0).
	seeds = {
	    "rdata-rend": sframe(6, 0, 5, 0, 0, 5) + b"hello" + sframe(7, 0, 16, 1, 5, 0) + bytes(16),
	    "credit-rdata-verdict": sreply(1, 0, 0, 0) + sframe(6, 0, 4, 0, 0, 4) + b"PONG" +
	        sframe(7, 0, 16, 1, 4, 0) + bytes(16) + sreply(2, 0, 0, 10),
	    "out-of-order": sframe(6, 0, 3, 0, 7, 3) + b"abc",
	    "failed-verdict": sreply(2, 6, 0, 0, b"checksum mismatch"),
	}
	for name, d in seeds.items():
	    open("corpus/fuzz_stream_back/" + name, "wb").write(b"\0" + d)
	open("corpus/fuzz_stream_back/no-return", "wb").write(b"\x10" + seeds["rdata-rend"])
	EOF

echo "mkcorpus: parsers"
mkdir -p corpus/fuzz_opts corpus/fuzz_wire corpus/fuzz_codec
i=0
for s in '\000125M' '\0001.5Gi' '\00064Ki' '\0001Gbit' '\000.5kb' '\001 8' '\00164' \
	'\002anon:7f0000000000-7f0000100000' '\003127.0.0.1:7777' '\003[::1]:0' '\003:9' \
	'\004unix:/run/q.sock' '\004tcp:h:1' '\004host:65535'; do
	printf "$s" >corpus/fuzz_opts/seed$i
	i=$((i + 1))
done
python3 - <<-'EOF'
	import os, struct, subprocess
	# The first message of each kind from a captured stream, and built ones.
	raw = open("corpus/fuzz_recv/raw1", "rb").read()
	hello = raw[4:4 + 72]                 # flags byte, segment header, hello
	open("corpus/fuzz_wire/hello", "wb").write(b"\0" + hello)
	ack = struct.pack("<IHHII96s", 0x47494d4c, 1, 120, 3, 0, b"") + bytes(8)
	open("corpus/fuzz_wire/ack", "wb").write(b"\1" + ack)
	res = struct.pack("<IIQ96s", 0x5352474d, 0, 6, b"") + bytes(8)
	open("corpus/fuzz_wire/result", "wb").write(b"\2" + res)
	rack = struct.pack("<IIQ96s", 0x4152474d, 0, 1, b"") + bytes(8)
	open("corpus/fuzz_wire/round-ack", "wb").write(b"\2" + rack)
	sf = struct.pack("<IHHIIQQIIQ", 0x4653474d, 2, 0, 0, 4096, 0, 0, 4096, 0, 0) + bytes(8)
	open("corpus/fuzz_wire/sframe", "wb").write(b"\3" + sf)
	sr = struct.pack("<IHHIIQ96s", 0x5253474d, 1, 0, 0, 0, 1 << 21, b"") + bytes(8)
	open("corpus/fuzz_wire/sreply", "wb").write(b"\4" + sr)
	# lz4 and zstd pages as lmig sent them: the payloads of captured streams.
	def pages(capture, want, prefix):
	    cap = open("corpus/fuzz_recv/" + capture, "rb").read()
	    st, i = b"", 1
	    while i + 3 <= len(cap):
	        n = cap[i + 1] | cap[i + 2] << 8
	        if cap[i] == 0:
	            st += cap[i + 3:i + 3 + n]
	        i += 3 + n
	    pos, k = 72, 0
	    while pos + 32 <= len(st):
	        _, typ, _, nd, pl = struct.unpack_from("<IHHII", st, pos)
	        if typ != 1:
	            break
	        q = pos + 32 + nd * 24
	        for j in range(nd):
	            _, enc, _, ln, _ = struct.unpack_from("<QHHIQ", st, pos + 32 + j * 24)
	            if enc == want:
	                open("corpus/fuzz_codec/%s%d" % (prefix, k), "wb").write(st[q:q + ln])
	                k += 1
	            if enc != 0:
	                q += ln
	        pos = q
	pages("lz4-1", 2, "page")
	pages("zstd-1", 3, "zstd")
	EOF
