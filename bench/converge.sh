#!/bin/sh
# Convergence benchmark (make bench): a QEMU guest that dirties memory
# faster than its link carries it, migrated natively, natively with
# auto-converge, and through lmig with --qmp, side by side in one run.
#
# The link is QEMU's max-bandwidth (CONV_LINK MB/s, default 16) on
# loopback: the same cap for every case, so the cases differ only in what
# slows the guest down.  The guest, under QEMU 7.2 TCG with CONV_MEM MiB
# of RAM, fills CONV_TOUCH MiB and rewrites it at CONV_MULTS times the
# link's rate, at wall pace, with two vCPUs: the writer on vCPU 0 and, on
# vCPU 1, a thread that only computes and prints its rate.  The writer
# computes before each page it writes (guest.c's guest_busy=CONV_BUSY,
# default 40: it needs 40 % of its vCPU at full speed for its rate, and a
# CPU limit slows it, as it does a real workload that computes between
# writes); CONV_BUSY=0 gives the writer that only sleeps between its
# slices, on which no CPU limit lmig may set at 300 ms bites.  By default
# the guest is Debian's kernel with selftests/qemu/guest.c as /init
# (guest_compute=1); CONV_GUEST=bare takes the guest without an OS of
# `mkguest.sh --smp` (selftests/qemu/smp, built for nested KVM; it boots
# in a second).  It runs 5 s before migrating, so the computing vCPU's
# rate before is known.  For each rate (selftests/qemu/qmig.py, one fresh
# source and destination a run):
#
#   native          migrate tcp:, no capability; cancelled after CONV_BOUND s
#   auto-converge   the same with QEMU's auto-converge (default throttle
#                   steps: 20 % then +10 % a pass, at most 99 %); cancelled
#                   after CONV_AC_BOUND s
#   lmig            `lmig proxy send --qmp` (CONV_LMIG=pipe: `lmig pipe
#                   send --qmp`), --throttle auto; cancelled after
#                   CONV_LMIG_BOUND s
#   lmig99          the same with --throttle-max 99 (in CONV_CASES only
#                   when asked for)
#
# A cancelled run is reported as "did not finish in N s" with how far it
# got: how many passes QEMU had made and the least any pass left dirty
# (what QEMU must send with the guest stopped; under the downtime-limit
# times the link it would have switched over), and auto-converge's
# throttle at that point.  Before the runs, one probe
# of QEMU's own dirty-limit (set-vcpu-dirty-limit) under TCG records
# QEMU's answer.
#
# Prints a Markdown table on stdout (make bench appends it to
# bench/results-latest.md): finished or not, QEMU's total time and
# downtime, the guest's pause as its console shows it (guest_pause_ms,
# when qmig.py reports it), the peak dirty rate QEMU measured, how far a
# cancelled run got, the limit lmig applied (lowest % of a CPU, how many
# of the vCPU threads, why those), the writer's own rate before and
# during the migration (with CONV_BUSY) and, with a guest that has a computing
# vCPU, that vCPU's rate during the migration as a % of its rate before
# (compute_pct of qmig.py; on a shared machine it moves by tens of per
# cent by itself: the native rows are its yardstick).  Then PASS/MISS, for
# each way through lmig, against the targets: lmig converges at every rate; its total time <= 0.5x
# auto-converge's where auto-converge finishes; its downtime <= 300 ms
# (QEMU's default downtime-limit); the computing vCPU >= 90 %.
# Progress goes to stderr.
#
# Knobs (environment): CONV_LINK (MB/s, 16), CONV_MULTS ("1 2 4"),
# CONV_CASES ("native auto lmig"), CONV_REPS (runs per cell, 1; the table
# shows the median total time's run), CONV_BOUND (s, 30), CONV_AC_BOUND
# (s, 100), CONV_LMIG_BOUND (s, 120), CONV_MEM (MiB, 512), CONV_TOUCH
# (MiB, 64), CONV_LMIG (proxy or pipe), CONV_GUEST (linux or bare),
# CONV_BUSY (% of its vCPU the writer needs, 40 with linux; bare: 0 only),
# CONV_KEEP (a file to append each run's qmig.py JSON line to), LMIG.
# The bounds: a pass over the 64 MiB takes about 4 s at 16 MB/s, so 30 s
# is 6-7 passes whose remainder does not fall; auto-converge steps its
# throttle every second pass and reaches its 99 % at about 80 s.
# Default run: 9 migrations, about 10 minutes on 2 loaded CPUs with the
# computing writer (about 15 with CONV_BUSY=0, where nothing converges),
# the bounded ones dominating (the Debian guest boots in 10-25 s, the one
# without an OS in about one); with lmig99 12, about 22 with CONV_BUSY=0.
#
# Exit status 0 whether the targets are met or not; 1 if a run failed
# (harness error, lmig error, a destination that does not run on).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
top=$(cd "$here/.." && pwd)
CONV_LINK=${CONV_LINK:-16}
CONV_MULTS=${CONV_MULTS:-1 2 4}
CONV_CASES=${CONV_CASES:-native auto lmig}
CONV_REPS=${CONV_REPS:-1}
CONV_BOUND=${CONV_BOUND:-30}
CONV_AC_BOUND=${CONV_AC_BOUND:-100}
CONV_LMIG_BOUND=${CONV_LMIG_BOUND:-120}
CONV_MEM=${CONV_MEM:-512}
CONV_TOUCH=${CONV_TOUCH:-64}
CONV_LMIG=${CONV_LMIG:-proxy}
CONV_GUEST=${CONV_GUEST:-linux}
CONV_BUSY=${CONV_BUSY:-}
[ -n "$CONV_BUSY" ] || { [ "$CONV_GUEST" = bare ] && CONV_BUSY=0 || CONV_BUSY=40; }
CONV_KEEP=${CONV_KEEP:-}
LMIG=${LMIG:-$top/user/lmig}
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

work=""
log() { echo "$*" >&2; }
die() { echo "bench/converge: $*" >&2; exit 1; }
num() { case $1 in '' | *[!0-9]*) die "$2 must be a whole number, not '$1'" ;; esac; }

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	[ -n "$work" ] && rm -rf "$work"
	exit "$rc"
}

for v in CONV_LINK:"$CONV_LINK" CONV_REPS:"$CONV_REPS" CONV_BOUND:"$CONV_BOUND" \
	CONV_AC_BOUND:"$CONV_AC_BOUND" CONV_LMIG_BOUND:"$CONV_LMIG_BOUND" CONV_MEM:"$CONV_MEM" \
	CONV_TOUCH:"$CONV_TOUCH" CONV_BUSY:"$CONV_BUSY"; do
	num "${v#*:}" "${v%%:*}"
done
for m in $CONV_MULTS; do num "$m" CONV_MULTS; done
for c in $CONV_CASES; do
	case $c in native | auto | lmig | lmig99) ;; *) die "unknown case '$c' in CONV_CASES (native auto lmig lmig99)" ;; esac
done
case $CONV_LMIG in proxy | pipe) ;; *) die "CONV_LMIG must be proxy or pipe, not '$CONV_LMIG'" ;; esac
command -v jq >/dev/null || die "jq not found; run 'sh scripts/install-deps.sh bench' as root"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (qemu-system-x86)"
[ -x "$LMIG" ] || die "$LMIG not found; run 'make user'"
[ "$(id -u)" = 0 ] || die "the benchmark needs root (lmig limits QEMU's vCPU threads through cgroups)"
# The computing vCPU prints its rate every 0.5 s: 5 s of it before migrating.
case $CONV_GUEST in
linux)
	initrd=$(sh "$top/selftests/qemu/mkguest.sh") || die "cannot build the guest"
	guest_args="--initrd $initrd --smp 2 --settle 5"
	guest_append="pti=on guest_compute=1"
	guest_words="Debian's kernel, 2 vCPUs, /init of selftests/qemu/guest.c with guest_compute=1 (writer on CPU 0, a thread on CPU 1 that only computes)"
	if [ "$CONV_BUSY" -gt 0 ]; then
		[ "$CONV_BUSY" -le 95 ] || die "CONV_BUSY must be 0..95, not '$CONV_BUSY'"
		guest_append="$guest_append guest_busy=$CONV_BUSY"
		guest_words="$guest_words; the writer computes before each page, needing $CONV_BUSY % of its vCPU at full speed for its rate (guest_busy=$CONV_BUSY)"
	else
		guest_words="$guest_words; the writer sleeps between its slices (one word a page)"
	fi
	;;
bare)
	elf=$(sh "$top/selftests/qemu/mkguest.sh" --smp) || die "cannot build the two-vCPU guest"
	guest_args="--kernel $elf --initrd none --smp 2 --settle 5"
	[ "$CONV_BUSY" = 0 ] || die "CONV_BUSY needs CONV_GUEST=linux (the guest without an OS has no computing writer)"
	guest_append="pti=on"
	guest_words="two vCPUs without an OS (selftests/qemu/smp): vCPU 0 writes, vCPU 1 only computes"
	;;
*) die "CONV_GUEST must be linux or bare, not '$CONV_GUEST'" ;;
esac
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d /dev/shm/lmig-bconv.XXXXXX)
# A private copy: a rebuild during the run must not mix two builds.
cp "$LMIG" "$work/lmig"
: >"$work/results"
: >"$work/failures"
link_bps=$((CONV_LINK * 1000000))

# QEMU's own dirty limit under TCG: its answer, in one line.
dirty_limit_probe() {
	$py - "$top/selftests/qemu" "$work/probe.qmp" <<'EOF' 2>&1 | tail -n 1
import os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from qmig import QMP, QMPError
sock = sys.argv[2]
p = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-S", "-m", "64", "-nographic",
                      "-nodefaults", "-qmp", "unix:%s,server=on,wait=off" % sock],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
try:
    q = QMP(sock, timeout=20)
    try:
        q.cmd("set-vcpu-dirty-limit", **{"dirty-rate": 10})
        print("accepted under TCG")
    except QMPError as e:
        print("QEMU answered: " + str(e))
except (QMPError, OSError) as e:
    print("no answer: " + str(e))
finally:
    p.kill()
    p.wait()
EOF
}

case_title() {
	case $1 in
	native) echo "native precopy" ;;
	auto) echo "native + auto-converge" ;;
	lmig) echo "lmig $CONV_LMIG send --qmp" ;;
	lmig99) echo "lmig $CONV_LMIG send --qmp --throttle-max 99" ;;
	esac
}

# One migration; appends one line to results:
# mult case rep status total down pause bound remainingMB passes acpct dirtyMBs limit nlim nvcpu whom compute
# wbusy wbefore wduring wmin (the computing writer's own lines)
run_one() {
	mult=$1 cs=$2 rep=$3
	rate=$((mult * CONV_LINK))
	extra="--transport tcp"
	bound=$CONV_BOUND
	case $cs in
	auto)
		extra="--transport tcp --capability auto-converge"
		bound=$CONV_AC_BOUND
		;;
	lmig)
		extra="--transport $CONV_LMIG --lmig-qmp"
		bound=$CONV_LMIG_BOUND
		;;
	lmig99)
		extra="--transport $CONV_LMIG --lmig-qmp --lmig-qmp-args=--throttle-max=99"
		bound=$CONV_LMIG_BOUND
		;;
	esac
	rm -rf "$work/run"
	mkdir -p "$work/run"
	# shellcheck disable=SC2086
	$py "$top/selftests/qemu/qmig.py" --name "conv-$cs-$mult" $extra \
		--work "$work/run" --mem "$CONV_MEM" --touch "$CONV_TOUCH" --rate "$rate" \
		--max-bandwidth "$link_bps" --bound "$bound" --timeout $((bound + 60)) \
		--boot-timeout 240 --lmig "$work/lmig" $guest_args --guest-append "$guest_append" \
		>"$work/res.json" 2>"$work/res.err" || true
	res=$(tail -n 1 "$work/res.json")
	[ -z "$CONV_KEEP" ] || printf '%s\n' "$res" >>"$CONV_KEEP"
	j() { printf '%s' "$res" | jq -r "$1" 2>/dev/null || echo "-"; }
	status=$(j '.status // "none"')
	err=$(j '.harness_error // empty')
	bounded=$(j '.bounded // false')
	ok=1
	if [ "$status" = completed ]; then
		dst=$(j '.dst_status // "none"')
		adv=$(j '(.dst_last_tick // 0) > (.dst_first_tick // 0) and (.dst_first_tick // 0) > (.src_tick_at_migrate // 0)')
		[ "$dst" = running ] && [ "$adv" = true ] || ok=0
		why="destination $dst, guest counter $(j '"source at \(.src_tick_at_migrate), destination \(.dst_first_tick)..\(.dst_last_tick)"')"
	elif [ "$bounded" = true ] && [ "$status" = cancelled ]; then
		# Cancelled at the bound: the source must still run its guest.
		[ "$(j '.src_status')" = running ] && [ "$(j '(.src_tick_later // 0) > (.src_tick_after_failure // 0)')" = true ] || ok=0
		why="cancelled at the bound, source $(j '.src_status'), counter $(j '"\(.src_tick_after_failure)..\(.src_tick_later)"')"
	else
		ok=0
		why="status $status"
	fi
	if [ "$cs" != native ] && [ "$cs" != auto ]; then
		send=$(j ".${CONV_LMIG}_send_exit // \"none\"")
		restored=$(j '.vcpu_cpu_restored // false')
		# lmig must put the vCPU threads back however the migration ended.
		[ "$restored" = true ] || { ok=0; why="$why, vCPU threads not restored"; }
		[ "$status" != completed ] || [ "$send" = 0 ] || { ok=0; why="$why, lmig $CONV_LMIG send exit $send"; }
	fi
	[ -z "$err" ] || { ok=0; why="$why, $err"; }
	if [ "$ok" = 0 ]; then
		log "*** FAIL rate ${mult}x $cs: $why $(tail -c 400 "$work/res.err")"
		echo "${mult}x $cs: $why" >>"$work/failures"
		echo "$mult $cs $rep FAIL - - - - - - - - - - - - - - - - -" >>"$work/results"
		return
	fi
	total=$(j '.total_time_ms // "-"')
	down=$(j '.downtime_ms // "-"')
	pause=$(j '.guest_pause_ms // "-"')
	rem=$(j '.pass_left_min // "-"')
	passes=$(j '.last_active.dirty_sync_count // "-"')
	acpct=$(j '.last_active.cpu_throttle_pct // "-"')
	dirty=$(j '((.dirty_pages_rate_max // 0) * 4096 / 1e6 * 10 | floor) / 10')
	lim=- nlim=- nvcpu=- whom=-
	if [ "$cs" != native ] && [ "$cs" != auto ]; then
		t=".lmig[\"$CONV_LMIG-send\"].throttle"
		if [ "$(j "$t.throttled // false")" = true ]; then
			lim=$(j "$t.min_limit_pct")
			nlim=$(j "$t.limited | length")
			whom=$(j "$t.whom")
		else
			lim=none whom=$(j "$t.whom // \"-\"")
		fi
		nvcpu=$(j "$t.vcpu_threads | length")
	fi
	comp=$(j '.compute_pct // "-"')
	wbusy=$(j '.writer_busy_before_pct // "-"')
	wbefore=$(j '.writer_mbs_before // "-"')
	wduring=$(j '.writer_mbs_during // "-"')
	wmin=$(j '.writer_mbs_during_min // "-"')
	fin=$([ "$status" = completed ] && echo completed || echo "bound")
	log "$(printf 'rate %dx (%d MB/s) %-7s rep %d: %s total %s ms downtime %s ms pause %s ms; remaining %s B after %s passes, throttle %s %%; lmig limit %s %% on %s/%s (%s); boot %s s' \
		"$mult" "$rate" "$cs" "$rep" "$fin" "$total" "$down" "$pause" "$rem" "$passes" "$acpct" \
		"$lim" "$nlim" "$nvcpu" "$whom" "$(j '.boot_s')")"
	echo "$mult $cs $rep $fin $total $down $pause $bound $rem $passes $acpct $dirty $lim $nlim $nvcpu $whom $comp $wbusy $wbefore $wduring $wmin" >>"$work/results"
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$(date +%s)
load0=$(cut -d ' ' -f 1-3 /proc/loadavg)
dl=$(dirty_limit_probe)
log "dirty-limit under TCG: $dl"
r=1
while [ "$r" -le "$CONV_REPS" ]; do
	for m in $CONV_MULTS; do
		for cs in $CONV_CASES; do
			run_one "$m" "$cs" "$r"
		done
	done
	r=$((r + 1))
done

commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null) || commit=unknown
echo "### QEMU convergence, $started"
echo ""
echo "- Machine: Linux $(uname -r), $(nproc) CPUs, load average at start $load0"
echo "- $(qemu-system-x86_64 --version | head -n 1), TCG; guest: $guest_words; $CONV_MEM MiB," \
	"$CONV_TOUCH MiB filled and rewritten at wall pace; link: QEMU's" \
	"max-bandwidth $CONV_LINK MB/s on loopback; QEMU's downtime-limit 300 ms (default)"
echo "- lmig: \`$("$work/lmig" version | head -n 1)\`, \`lmig $CONV_LMIG send --qmp\`" \
	"(--throttle auto); source tree at commit $commit"
echo "- Bounds: native ${CONV_BOUND} s, auto-converge ${CONV_AC_BOUND} s, lmig ${CONV_LMIG_BOUND} s;" \
	"$CONV_REPS run(s) per cell (the median total time's run shown)"
echo "- QEMU's dirty-limit (set-vcpu-dirty-limit) under TCG: $dl"
echo ""
awk -v link="$CONV_LINK" -v t_native="$(case_title native)" -v t_auto="$(case_title auto)" \
    -v t_lmig="$(case_title lmig)" -v t_lmig99="$(case_title lmig99)" '
function title(c) { return c == "native" ? t_native : c == "auto" ? t_auto : c == "lmig" ? t_lmig : t_lmig99 }
function ms(v) { return v == "-" ? "-" : sprintf("%d", v) }
{
	k = $1 SUBSEP $2
	if (!(k in seen)) { seen[k] = 1; order[++n] = k }
	if ($4 == "FAIL") { failed[k] = 1; next }
	m = ++cnt[k]
	for (f = 4; f <= NF; f++) v[k, m, f] = $f
	# Sort key: completed runs by total time, bounded ones after them.
	key[k, m] = $4 == "completed" ? $5 : 1e12
}
function pick(k,    i, j, t, idx, c) {
	c = cnt[k]
	for (i = 1; i <= c; i++) idx[i] = i
	for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++)
		if (key[k, idx[j]] < key[k, idx[i]]) { t = idx[i]; idx[i] = idx[j]; idx[j] = t }
	return idx[int((c + 1) / 2)]
}
END {
	print "| dirty rate | migration | finished | total time s | downtime ms | guest pause ms | peak dirty MB/s (QEMU) | how far, if cancelled | lmig limit | writer MB/s before (busy) / during, least | computing vCPU |"
	print "|---|---|---|---:|---:|---:|---:|---|---|---|---:|"
	for (i = 1; i <= n; i++) {
		k = order[i]; split(k, a, SUBSEP); mu = a[1]; c = a[2]
		rate = sprintf("%dx link (%d MB/s)", mu, mu * link)
		if (!cnt[k]) { printf "| %s | %s | FAIL | | | | | | | | |\n", rate, title(c); continue }
		p = pick(k)
		done = v[k, p, 4] == "completed"
		fin = done ? "yes" : sprintf("no: did not finish in %d s", v[k, p, 8])
		far = "-"
		if (!done) {
			far = sprintf("%s passes, each left at least %.1f MB dirty (%.1f MB fits in 300 ms)", v[k, p, 10], v[k, p, 9] / 1e6, link * 0.3)
			if (c == "auto") far = far sprintf(", throttle %s %%", v[k, p, 11])
		}
		lim = "-"
		if (c ~ /^lmig/)
			lim = v[k, p, 13] == "none" ? "none needed" : \
				sprintf("%s %% of a CPU, %s of %s vCPU threads (%s)", v[k, p, 13], v[k, p, 14], v[k, p, 15], v[k, p, 16])
		comp = v[k, p, 17] == "-" ? "-" : v[k, p, 17] " %"
		wr = v[k, p, 19] == "-" ? "-" : sprintf("%s (%s %%) / %s, %s", v[k, p, 19], v[k, p, 18], v[k, p, 20], v[k, p, 21])
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rate, title(c), fin,
			done ? sprintf("%.1f", v[k, p, 5] / 1000) : "-", done ? ms(v[k, p, 6]) : "-",
			done ? ms(v[k, p, 7]) : "-", v[k, p, 12], far, lim, wr, comp
		T[k] = done ? v[k, p, 5] : -1; D[k] = v[k, p, 6]; C[k] = v[k, p, 17]
		mults[mu] = 1
	}
	print ""
	# Targets, judged on the runs shown, for each way through lmig.
	split("lmig lmig99", kinds, " ")
	for (q = 1; q <= 2; q++) {
		lk = kinds[q]
		conv = "PASS"; nconv = 0; tt = ""; dt = "PASS"; ct = ""; nl = 0
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, a, SUBSEP); mu = a[1]; c = a[2]
			if (c != lk) continue
			nl++
			if (C[k] != "-" && C[k] != "") ct = ct sprintf("%dx: %s %% (%s); ", mu, C[k], C[k] >= 90 ? "PASS" : "MISS")
			if (!(k in T) || T[k] < 0) { conv = "MISS"; continue }
			nconv++
			if (D[k] > 300) dt = "MISS"
			ac = mu SUBSEP "auto"
			if ((ac in T) && T[ac] >= 0)
				tt = tt sprintf("%dx: %.2fx the auto-converge time (%s); ", mu, T[k] / T[ac], T[k] <= 0.5 * T[ac] ? "PASS" : "MISS")
			else if (ac in seen)
				tt = tt sprintf("%dx: auto-converge did not finish (not judged); ", mu)
		}
		if (!nl) continue
		sub(/; $/, "", tt); sub(/; $/, "", ct)
		printf "Targets, %s:\n\n", title(lk)
		printf "- converges at every rate: %s (%d of %d)\n", conv, nconv, nl
		printf "- total time <= 0.5x auto-converge'\''s where it finishes: %s\n", tt == "" ? "not judged" : tt
		printf "- downtime <= 300 ms: %s\n", nconv ? dt : "not judged (none finished)"
		printf "- computing vCPU >= 90 %% of its rate before: %s\n\n", ct == "" ? "not measured (this guest has no computing vCPU)" : ct
	}
}' "$work/results"
echo ""
if [ -s "$work/failures" ]; then
	echo "#### FAILED RUNS"
	echo ""
	sed 's/^/- /' "$work/failures"
	echo ""
fi
echo "Wall time: $(($(date +%s) - t0)) s; load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo ""
[ ! -s "$work/failures" ]
