#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# The CPU throttle on per-vCPU cgroups (libvirt's shape), a threaded
# child and their restores, on cgroup v2: run inside the VM by
# selftests/test_throttle_vcpu, which is also what runs here (its v2
# cases; the host's cpu controller is bound to cgroup v1).  It mounts
# cgroup2 at /sys/fs/cgroup with +cpu and prints the program's TAP
# output; `lmig throttle --restore` is this repository's user/lmig.
#
# Usage: throttle_vcpu.sh
set -u

. "$(dirname "$0")/guest-lib.sh"
cg=/sys/fs/cgroup

[ "${LMIG_VM:-0}" = 1 ] || { echo "error not in the VM"; exit 1; }
if ! grep -q " $cg cgroup2 " /proc/mounts; then
	mount -t cgroup2 none "$cg" || { echo "error cannot mount cgroup2"; exit 1; }
fi
echo +cpu >"$cg/cgroup.subtree_control" || { echo "error no cpu controller"; exit 1; }
LMIG=$lmig "$here/../build/test_throttle_vcpu"
