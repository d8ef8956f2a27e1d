#!/bin/sh
# Installs the Debian packages lmig needs to build, test and benchmark.
# Idempotent: installs only what is missing.  Run as root on Debian 12.
set -eu

# Packages for each target; "all" is everything.
build="gcc make pkg-config liburing-dev liblz4-dev libzstd-dev libxxhash-dev"
# The eBPF probes (bpf/): without these lmig is built without them.
build="$build clang libbpf-dev bpftool"
# TLS on the migration channels (user/chan/tls_*.c); the openssl command makes
# the test CAs (selftests/tls/mkcerts.sh) and operators' certificates.
build="$build libssl-dev openssl"
# The VM tests (selftests/vm) boot Debian's kernel under QEMU; lmig.ko is
# built for both of Debian 12's kernels (6.1 and 6.12) and tested in each.
check="$build linux-source-6.1 xz-utils iproute2 util-linux qemu-system-x86 linux-image-amd64 busybox-static cpio"
check="$check linux-headers-amd64 linux-image-6.12-amd64 linux-headers-6.12-amd64 perl"
# selftests/qemu/qmig.py drives QEMU over QMP.
check="$check python3"
# The man pages (make man, Documentation/man/*.scd) and their test, which also
# drives the bash completion (completion/lmig) in a real bash.
check="$check scdoc man-db bash-completion"
# fuzz/: clang's libFuzzer runtime (and its sanitizers) for the harnesses.
check="$check libclang-rt-14-dev"
# The Debian packages (debian/, selftests/install/deb.sh) and DKMS.
check="$check dpkg-dev debhelper dh-dkms dkms fakeroot lintian"
# bench/plot.sh (make bench) and its test in make check: the tables as SVG.
check="$check gnuplot-nox"
# selftests/libvirt/virtmig.py: two libvirtd migrating a domain through lmig proxy.
check="$check libvirt-daemon-system libvirt-clients"
bench="$check iperf3 jq"
# make vmcheck-debug builds a debug kernel from linux-source-6.1.
debug="$check bc flex bison libelf-dev libssl-dev util-linux"

case "${1:-check}" in
build) want=$build ;;
check) want=$check ;;
bench|demo) want=$bench ;;
debug) want=$debug ;;
*) echo "usage: $0 [build|check|bench|demo|debug]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
