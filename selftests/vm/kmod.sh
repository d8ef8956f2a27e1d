#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Inside the VM (run-in-vm.sh): load lmig.ko, run its selftests and unload
# it.  Prints each test program's TAP, in order, then one TAP line per step
# of its own ("ok - insmod", "ok - rmmod", "ok - kernel log"), and exits
# non-zero if anything failed.
#
# Usage: kmod.sh MODULE.ko TEST-PROGRAM...
set -u

ko=$1
shift
rc=0

dmesg -c >/dev/null 2>&1
if ! insmod "$ko"; then
	echo "not ok - insmod $ko"
	exit 1
fi
echo "ok - insmod"
echo "# $(uname -r), $(grep -m 1 'model name' /proc/cpuinfo | sed 's/.*: //')"
n=0
while [ ! -c /dev/lmig ] && [ $n -lt 50 ]; do
	sleep 0.1
	n=$((n + 1))
done

# The rmmod test unloads and reloads the module from this file.
for prog in "$@"; do
	LMIG_KO=$ko "$prog" || rc=1
done

if grep -q '^lmig ' /proc/modules && ! rmmod lmig; then
	echo "not ok - rmmod"
	rc=1
else
	echo "ok - rmmod"
fi
# A warning, an oops or a lockup report fails the run.
if dmesg | grep -E 'WARNING|BUG|Oops|lockup|refcount_t|general protection' >/tmp/kmod.dmesg; then
	sed 's/^/# dmesg: /' /tmp/kmod.dmesg | head -n 40
	echo "not ok - kernel log"
	rc=1
else
	echo "ok - kernel log"
fi
exit $rc
