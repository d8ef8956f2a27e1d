# SPDX-License-Identifier: GPL-2.0-only
#
# Sourced by the VM scripts that need /dev/kvm (kvm.sh, probes.sh).
# kvm_load: load kvm_amd if /dev/kvm is not there yet (run-in-vm.sh gives
# the guest CPU +svm).  Returns 0 once /dev/kvm exists; otherwise prints
# "kvm skip REASON" for the host-side test and returns 1.
kvm_load() {
	[ -c /dev/kvm ] && return 0
	if ! grep -qw svm /proc/cpuinfo; then
		echo "kvm skip the VM's CPU has no svm flag (qemu -cpu without +svm)"
		return 1
	fi
	if ! err=$(modprobe kvm_amd 2>&1); then
		echo "kvm skip modprobe kvm_amd failed: $(echo "$err" | tr '\n' ' ')"
		return 1
	fi
	n=0
	while [ ! -c /dev/kvm ] && [ $n -lt 50 ]; do
		n=$((n + 1))
		sleep 0.1
	done
	[ -c /dev/kvm ] && return 0
	echo "kvm skip kvm_amd loaded but no /dev/kvm: $(dmesg | grep -i -m 3 'kvm' | tr '\n' ' ')"
	return 1
}
