#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# A throw-away CA and its server and client certificates, laid out like
# QEMU's and libvirt's migration TLS directories:
#
#   DIR/ca-cert.pem DIR/ca-key.pem
#   DIR/server-cert.pem DIR/server-key.pem   (the receiving side)
#   DIR/client-cert.pem DIR/client-key.pem   (the sending side)
#   DIR/ca-crl.pem                           (only with -r or -R)
#
# Usage: mkcerts.sh DIR [NAME [SAN]]
#          NAME goes into the subjects (default "test"); SAN is the server
#          certificate's subjectAltName, which a sender checks against the
#          host of its --to (default DNS:localhost,IP:127.0.0.1,IP:::1)
#        mkcerts.sh -r DIR ROLE...
#          revoke DIR/ROLE-cert.pem (server, client) and write DIR/ca-crl.pem
#        mkcerts.sh -R DIR
#          write DIR/ca-crl.pem revoking nothing
#        mkcerts.sh -E DIR
#          the same, but a list whose next update was due in 2000 (expired)
set -eu

days=2

case ${1:-} in
-r | -R | -E)
	# 'openssl ca' keeps what it revoked in crl-index.txt and signs
	# DIR/ca-crl.pem from it with DIR's CA.
	mode=$1
	cd "$2"
	shift 2
	cat >ca.cnf <<-END
	[ca]
	default_ca = ca_default
	[ca_default]
	database = crl-index.txt
	certificate = ca-cert.pem
	private_key = ca-key.pem
	default_md = sha256
	default_crl_days = $days
	END
	touch crl-index.txt
	if [ "$mode" = -r ]; then
		for role in "$@"; do
			openssl ca -config ca.cnf -revoke "$role-cert.pem" 2>/dev/null
		done
	fi
	if [ "$mode" = -E ]; then
		set -- -crl_lastupdate 20000101000000Z -crl_nextupdate 20000102000000Z
	else
		set --
	fi
	openssl ca -config ca.cnf -gencrl "$@" -out ca-crl.pem 2>/dev/null
	rm -f ca.cnf crl-index.txt.old crl-index.txt.attr crl-index.txt.attr.old
	exit 0
	;;
esac

dir=$1
name=${2:-test}
san=${3:-DNS:localhost,IP:127.0.0.1,IP:::1}
mkdir -p "$dir"
cd "$dir"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

# shellcheck disable=SC2086
openssl req -x509 $ec -keyout ca-key.pem -out ca-cert.pem -days $days \
	-subj "/CN=lmig $name CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	2>/dev/null
for role in server client; do
	if [ $role = server ]; then
		eku=serverAuth
		alt=$san
	else
		eku=clientAuth
		alt=DNS:localhost,IP:127.0.0.1
	fi
	# shellcheck disable=SC2086
	openssl req $ec -keyout $role-key.pem -out $role.csr -subj "/CN=lmig $name $role" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
		$eku "$alt" >$role.ext
	openssl x509 -req -in $role.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial \
		-days $days -extfile $role.ext -out $role-cert.pem 2>/dev/null
	rm -f $role.csr $role.ext
done
rm -f ca-cert.srl
chmod 600 ./*-key.pem
