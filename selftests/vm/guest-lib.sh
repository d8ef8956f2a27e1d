# SPDX-License-Identifier: GPL-2.0-only
#
# Sourced by the scripts that run inside the VM (softdirty.sh, tls.sh,
# live.sh, outfile.sh, kvm.sh, probes.sh, throttle.sh): where the
# repository is (the host's root is the guest's, at the same paths), the
# lmig they run, and what they wait for alike.
#
# Sets: here (selftests/vm), repo, lmig (user/lmig).

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
lmig=$repo/user/lmig

# wait_file FILE: until FILE has something in it (what a --ready-fd
# writes); returns 1 after 30 s.
wait_file() {
	wf_n=0
	while [ ! -s "$1" ]; do
		wf_n=$((wf_n + 1))
		[ $wf_n -lt 300 ] || return 1
		sleep 0.1
	done
}

# kvm_load: /dev/kvm in the guest, from kvm_amd (nested KVM: it needs the
# CPU's svm flag, which run-in-vm.sh passes).  Prints "kvm skip REASON"
# and exits 0 when it cannot be had.
kvm_load() {
	[ ! -c /dev/kvm ] || return 0
	if ! grep -qw svm /proc/cpuinfo; then
		echo "kvm skip the VM's CPU has no svm flag (qemu -cpu without +svm)"
		exit 0
	fi
	if ! kl_err=$(modprobe kvm_amd 2>&1); then
		echo "kvm skip modprobe kvm_amd failed: $(echo "$kl_err" | tr '\n' ' ')"
		exit 0
	fi
	kl_n=0
	while [ ! -c /dev/kvm ] && [ $kl_n -lt 50 ]; do
		kl_n=$((kl_n + 1))
		sleep 0.1
	done
	if [ ! -c /dev/kvm ]; then
		echo "kvm skip kvm_amd loaded but no /dev/kvm: $(dmesg | grep -i -m 3 'kvm' | tr '\n' ' ')"
		exit 0
	fi
}
