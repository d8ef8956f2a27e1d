#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# A throw-away CA and its server and client certificates, laid out like
# QEMU's and libvirt's migration TLS directories:
#
#   DIR/ca-cert.pem DIR/ca-key.pem
#   DIR/server-cert.pem DIR/server-key.pem   (the receiving side)
#   DIR/client-cert.pem DIR/client-key.pem   (the sending side)
#
# Usage: mkcerts.sh DIR [NAME]   (NAME goes into the subjects; default "test")
set -eu

dir=$1
name=${2:-test}
days=2
mkdir -p "$dir"
cd "$dir"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

# shellcheck disable=SC2086
openssl req -x509 $ec -keyout ca-key.pem -out ca-cert.pem -days $days \
	-subj "/CN=lmig $name CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	2>/dev/null
for role in server client; do
	if [ $role = server ]; then eku=serverAuth; else eku=clientAuth; fi
	# shellcheck disable=SC2086
	openssl req $ec -keyout $role-key.pem -out $role.csr -subj "/CN=lmig $name $role" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' \
		$eku >$role.ext
	openssl x509 -req -in $role.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial \
		-days $days -extfile $role.ext -out $role-cert.pem 2>/dev/null
	rm -f $role.csr $role.ext
done
rm -f ca-cert.srl
chmod 600 ./*-key.pem
