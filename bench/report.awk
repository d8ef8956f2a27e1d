# Turns the raw results that run.sh collects into the Markdown tables of
# Documentation/benchmarks.md.  Input: tab-separated records,
#   image <name> <bytes> <description>
#   path  <id> <title>
#   iperf <path> <rep> <MB/s|FAIL>
#   lmig  <path> <image> <mode> <rep> <MB/s|FAIL> <bytes_wire> <bytes_total> <pages_zero> <pages_total> <zerocopy> <channels>
# MB/s is 10^6 bytes per second of image (lmig) or of payload (iperf3).
# Plain POSIX awk (Debian's default is mawk): no asort, no gensub.

BEGIN { FS = "\t" }

$1 == "image" { img[++nimg] = $2; imgsize[$2] = $3; imgdesc[$2] = $4 }
$1 == "path" { path[++npath] = $2; title[$2] = $3 }
$1 == "iperf" { add($2 SUBSEP "iperf", $4) }
$1 == "lmig" {
	k = $2 SUBSEP $3 SUBSEP $4
	if (!(($4) in seenmode)) { seenmode[$4] = 1; mode[++nmode] = $4 }
	add(k, $6)
	if ($6 != "FAIL") {
		wire[k] = wire[k] " " $7
		runs[$2]++
		if ($11 == "true") zc[$2]++
		if (!(($2, $12) in seench)) { seench[$2, $12] = 1; chans[$2] = chans[$2] (chans[$2] == "" ? "" : ", ") $12 }
		if (!($3 in zero) && $10 > 0)
			zero[$3] = 100 * $9 / $10
	}
}

# Appends one measurement to the list for key k; "FAIL" only counts failures.
function add(k, v) {
	if (v == "FAIL") { fails[k]++; return }
	vals[k] = vals[k] " " v
}

# Median of a space-separated list of numbers ("" if empty).
function median(list,    a, n, i, j, t) {
	n = split(list, a, " ")
	if (n == 0)
		return ""
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}

function lo(list,    a, n, i, m) {
	n = split(list, a, " "); m = a[1] + 0
	for (i = 2; i <= n; i++) if (a[i] + 0 < m) m = a[i] + 0
	return m
}

function hi(list,    a, n, i, m) {
	n = split(list, a, " "); m = a[1] + 0
	for (i = 2; i <= n; i++) if (a[i] + 0 > m) m = a[i] + 0
	return m
}

function tried(k) { return (k in vals) || (k in fails) }

function count(list,    a) { return split(list, a, " ") }

# One row of the targets table; "n/a" when a run it needs failed.
function check(image, what, num, den, goal) {
	if (num == "" || den == "" || den + 0 == 0) {
		printf "| %s | %s | n/a | ≥ %.2f | MISS (no data) |\n", image, what, goal
		return
	}
	printf "| %s | %s | %.2f | ≥ %.2f | %s |\n", image, what, num / den, goal,
		(num / den >= goal ? "PASS" : "MISS")
}

function images_table(    i, n) {
	print "#### Images"
	print ""
	print "| image | size (MiB) | zero pages | content |"
	print "|---|--:|--:|---|"
	for (i = 1; i <= nimg; i++) {
		n = img[i]
		printf "| %s | %.0f | %s | %s |\n", n, imgsize[n] / 1048576,
			((n in zero) ? sprintf("%.1f %%", zero[n]) : "?"), imgdesc[n]
	}
	print ""
}

function path_tables(p,    i, j, k, n, m, ip, med, w, nruns, best, a, b) {
	ip = median(vals[p SUBSEP "iperf"])
	print "#### " title[p]
	print ""
	n = count(vals[p SUBSEP "iperf"])
	if (ip == "")
		print "- iperf3: **failed**"
	else
		printf "- iperf3: %.1f MB/s (median of %d; min %.1f, max %.1f)\n",
			ip, n, lo(vals[p SUBSEP "iperf"]), hi(vals[p SUBSEP "iperf"])
	printf "- lmig send: %s channels; zero-copy send in %d of %d runs\n", chans[p], zc[p], runs[p]
	print ""
	print "| image | mode | MB/s (median) | min–max | runs | wire MiB | wire/image | vs iperf3 |"
	print "|---|---|--:|--:|--:|--:|--:|--:|"
	for (i = 1; i <= nimg; i++)
		for (j = 1; j <= nmode; j++) {
			k = p SUBSEP img[i] SUBSEP mode[j]
			if (!(k in vals) && !(k in fails))
				continue
			nruns = count(vals[k]) (k in fails ? " (" fails[k] " failed)" : "")
			med = median(vals[k])
			if (med == "") {
				printf "| %s | %s | **failed** | | %s | | | |\n", img[i], mode[j], nruns
				continue
			}
			w = median(wire[k])
			printf "| %s | %s | %.1f | %.1f–%.1f | %s | %.1f | %.3f | %s |\n",
				img[i], mode[j], med, lo(vals[k]), hi(vals[k]), nruns,
				w / 1048576, w / imgsize[img[i]],
				(ip == "" ? "n/a" : sprintf("%.2f", med / ip))
			thr[k] = med
		}
	print ""
	print "| image | target | measured | goal | result |"
	print "|---|---|--:|--:|---|"
	for (i = 1; i <= nimg; i++) {
		m = img[i]
		k = p SUBSEP m SUBSEP
		# A target whose cells were not asked for (BENCH_MODES) is left out;
		# one whose runs all failed shows as a MISS.
		if (p == "loopback" && tried(k "none"))
			check(m, "`none` / iperf3", thr[k "none"], ip, 0.8)
		if (p == "netns" && m == "binary" && tried(k "auto"))
			check(m, "`auto` / iperf3 (link rate)", thr[k "auto"], ip, 1.6)
		if (!tried(k "auto") || !tried(k "none") || !tried(k "lz4"))
			continue
		a = thr[k "none"]; b = thr[k "lz4"]
		best = (a == "" || b == "") ? "" : (a + 0 > b + 0 ? a : b)
		check(m, "`auto` / max(`none`, `lz4`)", thr[k "auto"], best, 0.9)
	}
	print ""
}

END {
	images_table()
	for (i = 1; i <= npath; i++)
		path_tables(path[i])
}
