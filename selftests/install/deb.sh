#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# The Debian packages as a test (make check): build lmig and lmig-dkms
# from a copy of the tree (scripts/build-deb.sh, dpkg-buildpackage -us -uc
# -b), lintian must report no error (its warnings are listed), install
# both with dpkg -i on this machine, then:
#   - /usr/sbin/lmig version reports VERSION's release;
#   - the udev rule and the DKMS source are in place, and DKMS knows the
#     module (the postinst builds for the running kernel; when
#     /lib/modules has no directory for it, as on a host without loadable
#     modules or in a chroot, DKMS's postinst builds for every kernel
#     there instead: either way is right);
#   - for each kernel whose headers are installed, a build the postinst
#     made is undone (dkms unbuild) and dkms build -k KVER must succeed:
#     dkms status must say "built" and the module carry the release and
#     that kernel's vermagic;
# and dpkg --purge both: nothing of them may remain (/usr/sbin/lmig,
# /usr/src/lmig-VERSION, /var/lib/dkms/lmig), nor the DKMS signing key
# when this test made DKMS create it.  The build must not change the tree
# (git status before and after).
#
# Needs root, dpkg-buildpackage, lintian and dkms (scripts/install-deps.sh
# check); without them, or with lmig or lmig-dkms already installed
# (which it must not replace), it is one SKIP with the reason.  It takes
# 2 to 3 minutes on the 2-core test host, half of it the package build.
#
# LMIG_DEB_KEEP=DIR copies the DKMS-built modules into DIR/KVER/ before
# the purge, for the VM harness (selftests/test_kmod_vm 6.1=DIR/...).
#
# Usage: deb.sh
set -u

repo=$(cd "$(dirname "$0")/../.." && pwd)
ver=$(cat "$repo/VERSION")
. "$repo/selftests/lib/tap.sh"
installed=

totals() {
	tap_totals
	exit
}

echo "TAP version 13"
why=
[ "$(id -u)" = 0 ] || why="not root"
for tool in dpkg-buildpackage lintian dkms dh_dkms flock; do
	[ -n "$why" ] || command -v $tool >/dev/null 2>&1 ||
		why="no $tool (scripts/install-deps.sh check installs it)"
done
# One run at a time on a machine (other trees' make check): the packages
# and DKMS's tree are the machine's.
if [ -z "$why" ]; then
	exec 9>/run/lock/lmig-deb-test.lock
	flock -w 600 9 || why="another run of this test held /run/lock/lmig-deb-test.lock for 10 minutes"
fi
for p in lmig lmig-dkms; do
	[ -n "$why" ] || ! dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q 'ok installed' ||
		why="$p is installed on this machine: not replacing it"
done
[ -n "$why" ] || [ ! -e /var/lib/dkms/lmig ] || why="DKMS already holds lmig (/var/lib/dkms/lmig)"
[ -n "$why" ] || [ ! -e "/usr/src/lmig-$ver" ] || why="/usr/src/lmig-$ver exists"
if [ -n "$why" ]; then
	echo "1..1"
	result SKIP "Debian packages: $why"
	totals
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmig-debtest.XXXXXX") || exit 1
chmod 755 "$tmp"
# DKMS makes its signing key on its first build; one made here goes again.
mok_before=$(ls /var/lib/dkms/mok.key /var/lib/dkms/mok.pub 2>/dev/null)
cleanup() {
	if [ -n "$installed" ]; then
		dpkg_locked --purge lmig lmig-dkms >>"$tmp/purge.log" 2>&1
	fi
	if [ -z "$mok_before" ]; then
		rm -f /var/lib/dkms/mok.key /var/lib/dkms/mok.pub
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# dpkg ARGS..., waiting up to 5 minutes for the lock another apt or dpkg holds.
dpkg_locked() {
	tries=0
	while :; do
		dpkg "$@" >"$tmp/dpkg.out" 2>&1 && { cat "$tmp/dpkg.out"; return 0; }
		if grep -q 'lock' "$tmp/dpkg.out" && [ $tries -lt 60 ]; then
			tries=$((tries + 1))
			sleep 5
			continue
		fi
		cat "$tmp/dpkg.out"
		return 1
	done
}

kvers=
for b in /lib/modules/*/build; do
	[ -e "$b/Makefile" ] && kvers="$kvers ${b#/lib/modules/}" && kvers=${kvers%/build}
done
echo "1..$((7 + $(echo $kvers | wc -w)))"

tree_state() {
	git -C "$repo" status --porcelain --untracked-files=all 2>/dev/null
}

start=$(date +%s)
before=$(tree_state)
if ! nice -n 10 sh "$repo/scripts/build-deb.sh" "$tmp/out" >"$tmp/build.out" 2>&1; then
	result FAIL "dpkg-buildpackage -us -uc -b" "$(cat "$tmp/build.out")"
	totals
fi
after=$(tree_state)
if [ "$before" = "$after" ]; then
	result OK "dpkg-buildpackage -us -uc -b, the tree unchanged ($(($(date +%s) - start)) s)"
else
	result FAIL "dpkg-buildpackage -us -uc -b left the tree unchanged" "git status before:" \
		"$before" "after:" "$after"
fi
deb=$tmp/out/lmig_${ver}_amd64.deb
dkmsdeb=$tmp/out/lmig-dkms_${ver}_all.deb

# Errors fail; warnings and the rest are listed with the reason they stay
# (Documentation/install.md).
lintian "$tmp"/out/lmig_"$ver"_amd64.changes >"$tmp/lintian" 2>&1
rc=$?
grep -v '^running with root privileges' "$tmp/lintian" | sed 's/^/# lintian: /'
if grep -q '^E: ' "$tmp/lintian" || [ $rc -ne 0 ]; then
	result FAIL "lintian: no errors (exit status $rc)"
else
	result OK "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian") warnings)"
fi

# What each package holds, and that only lmig-dkms brings DKMS in.
bad=$(
	dpkg-deb -c "$deb" | awk '{ print $6 }' >"$tmp/lmig.files"
	dpkg-deb -c "$dkmsdeb" | awk '{ print $6 }' >"$tmp/dkms.files"
	for f in ./usr/sbin/lmig ./lib/udev/rules.d/60-lmig.rules ./usr/share/doc/lmig/README.md.gz; do
		grep -qx "$f" "$tmp/lmig.files" || echo "lmig lacks $f"
	done
	for f in dkms.conf VERSION kmod/Makefile kmod/lmig_main.c include/uapi/linux/lmig.h; do
		grep -qx "./usr/src/lmig-$ver/$f" "$tmp/dkms.files" || echo "lmig-dkms lacks /usr/src/lmig-$ver/$f"
	done
	! grep -q '^./usr/src/.' "$tmp/lmig.files" || echo "lmig holds module source"
	dpkg-deb -f "$deb" Depends | grep -q dkms && echo "lmig depends on dkms"
	dpkg-deb -f "$dkmsdeb" Depends | grep -q dkms || echo "lmig-dkms does not depend on dkms"
	[ "$(dpkg-deb -f "$deb" Version)" = "$ver" ] || echo "lmig's version is not $ver"
)
if [ -z "$bad" ]; then
	result OK "package contents and dependencies"
else
	result FAIL "package contents and dependencies" "$bad"
fi

if dpkg_locked -i "$deb" "$dkmsdeb" >"$tmp/install.log" 2>&1; then
	installed=1
	sed 's/^/# dpkg: /' "$tmp/install.log"
	result OK "dpkg -i lmig lmig-dkms"
else
	installed=1
	result FAIL "dpkg -i lmig lmig-dkms" "$(cat "$tmp/install.log")"
	totals
fi

out=$(/usr/sbin/lmig version 2>&1 | head -n 1)
case $out in
"lmig $ver, protocol "*) result OK "/usr/sbin/lmig version: $out" ;;
*) result FAIL "/usr/sbin/lmig version" "said '$out', VERSION is $ver" ;;
esac

bad=$(
	cmp -s /lib/udev/rules.d/60-lmig.rules "$repo/udev/60-lmig.rules" || echo "udev rule missing or differs"
	for f in "$repo"/kmod/*.[ch] "$repo"/include/uapi/linux/lmig.h; do
		case $f in *.mod.c) continue ;; esac
		rel=${f#"$repo"/}
		cmp -s "$f" "/usr/src/lmig-$ver/$rel" || echo "/usr/src/lmig-$ver/$rel differs from $rel"
	done
	dkms status -m lmig -v "$ver" 2>/dev/null | grep -q "^lmig/$ver" ||
		echo "dkms does not know lmig/$ver"
)
if [ -z "$bad" ]; then
	result OK "udev rule, DKMS source, and DKMS knows lmig/$ver"
else
	result FAIL "udev rule and DKMS source" "$bad"
fi

# On a host whose running kernel has no /lib/modules (no loadable modules,
# or a chroot), the postinst builds and installs for every kernel there
# instead; then the build is undone here, to build it anew.
for k in $kvers; do
	st=$(dkms status -m lmig -v "$ver" -k "$k" 2>/dev/null)
	[ -z "$st" ] || echo "# after dpkg -i: $st"
	if [ -n "$st" ] && ! dkms unbuild -m lmig -v "$ver" -k "$k" >"$tmp/dkms.log" 2>&1; then
		result FAIL "dkms unbuild -k $k" "$(tail -n 20 "$tmp/dkms.log")"
		continue
	fi
	start=$(date +%s)
	if ! nice -n 10 dkms build -m lmig -v "$ver" -k "$k" >"$tmp/dkms.log" 2>&1; then
		result FAIL "dkms build -k $k" "$(tail -n 20 "$tmp/dkms.log")" \
			"$(tail -n 20 "/var/lib/dkms/lmig/$ver/build/make.log" 2>/dev/null)"
		continue
	fi
	st=$(dkms status -m lmig -v "$ver" -k "$k" 2>/dev/null)
	ko=$(ls /var/lib/dkms/lmig/"$ver"/"$k"/*/module/lmig.ko* 2>/dev/null | head -n 1)
	mver=$( [ -n "$ko" ] && /sbin/modinfo -F version "$ko")
	magic=$( [ -n "$ko" ] && /sbin/modinfo -F vermagic "$ko" | cut -d ' ' -f 1)
	if echo "$st" | grep -q ": built" && [ "$mver" = "$ver" ] && [ "$magic" = "$k" ]; then
		result OK "dkms build -k $k: '$st', version $mver ($(($(date +%s) - start)) s)"
		if [ -n "${LMIG_DEB_KEEP:-}" ]; then
			mkdir -p "$LMIG_DEB_KEEP/$k" && cp "$ko" "$LMIG_DEB_KEEP/$k/"
		fi
	else
		result FAIL "dkms build -k $k" "status '$st', module '$ko' version '$mver' vermagic '$magic'"
	fi
done

installed=
if dpkg_locked --purge lmig lmig-dkms >"$tmp/purge.log" 2>&1; then
	left=$(ls -d /usr/sbin/lmig /lib/udev/rules.d/60-lmig.rules "/usr/src/lmig-$ver" \
		/var/lib/dkms/lmig 2>/dev/null)
	if [ -z "$left" ]; then
		result OK "dpkg --purge lmig lmig-dkms leaves nothing"
	else
		result FAIL "dpkg --purge lmig lmig-dkms leaves nothing" "left: $left"
	fi
else
	result FAIL "dpkg --purge lmig lmig-dkms" "$(cat "$tmp/purge.log")"
fi
totals
