# SPDX-License-Identifier: GPL-2.0-only
#
# Sourced by the VM scripts: a command that must not outlive its own
# limits, and where a process is when it does.
#
#   bounded TAG SECS CMD [ARG...]
#	Runs CMD (with the caller's redirections) and returns its exit
#	status.  If it still runs after SECS seconds, prints on the
#	script's output (descriptor 9, see below) one line
#	"TAG error CMD still running after SECS s: ..." with where each of
#	its threads and of the processes in $HANG_ALSO waits, then kills it.
#   where PID
#	Each thread of PID: "tid state wchan kernel-stack-top; ".
#
# The sourcing script's stdout is kept as descriptor 9 here, so the line
# goes to the result stream even when CMD's output is redirected.
exec 9>&1

where() { # PID
	for t in /proc/"$1"/task/*; do
		printf '%s %s %s %s; ' "${t##*/}" \
			"$(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "$t/status" 2>/dev/null)" \
			"$(cat "$t/wchan" 2>/dev/null)" \
			"$(head -n 3 "$t/stack" 2>/dev/null | tr '\n' ' ')"
	done
}

bounded() { # TAG SECS CMD [ARG...]
	b_tag=$1
	b_secs=$2
	shift 2
	"$@" &
	b_pid=$!
	(
		sleep "$b_secs" >/dev/null 2>&1
		kill -0 "$b_pid" 2>/dev/null || exit 0
		b_also=""
		for p in ${HANG_ALSO:-}; do
			b_also="$b_also; process $p: $(where "$p")"
		done
		echo "$b_tag error ${1##*/} ${2:-} still running after $b_secs s: $(where "$b_pid")$b_also" >&9
		kill -KILL "$b_pid"
	) &
	b_watch=$!
	b_rc=0
	wait "$b_pid" || b_rc=$?
	kill "$b_watch" 2>/dev/null
	wait "$b_watch" 2>/dev/null
	return "$b_rc"
}

# Is PID there and not a zombie?
alive() { # PID
	case $(sed -n 's/^State:[[:space:]]*\([A-Za-z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) in
	"" | Z) return 1 ;;
	esac
}

# wait_bounded TAG SECS PID: wait for PID, a child of the caller, at most
# SECS seconds; then the same line as bounded's, SIGKILL, and wait.
wait_bounded() { # TAG SECS PID
	w_n=0
	while alive "$3" && [ "$w_n" -lt $(($2 * 10)) ]; do
		w_n=$((w_n + 1))
		sleep 0.1
	done
	if alive "$3"; then
		echo "$1 error process $3 still running after $2 s: $(where "$3")" >&9
		kill -KILL "$3"
	fi
	wait "$3"
}
