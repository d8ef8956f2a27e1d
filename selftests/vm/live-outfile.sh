#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Inside the VM, for selftests/test_vm (vm.live): two scripts in one boot
# of Debian's 6.1 kernel, as a boot costs more than either's checks
# (about 7 s against 4 s for outfile.sh):
#
#   live.sh      the soft-dirty live migrations (its default cases)
#   outfile.sh   lmig recv's PATH.partial on 6.1's overlayfs, which has
#                no O_TMPFILE (the overlay module is loaded first)
#
# Prints both scripts' lines (their tags differ) and exits with the first
# non-zero status of the two, after running both.
set -u

here=$(cd "$(dirname "$0")" && pwd)
rc=0
sh "$here/live.sh" || rc=$?
if ! modprobe overlay; then
	echo "plain error modprobe overlay failed"
	[ $rc -ne 0 ] || rc=1
else
	st=0
	sh "$here/outfile.sh" || st=$?
	[ $rc -ne 0 ] || rc=$st
fi
exit $rc
