#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: run vm/tls.sh in a VM booting Debian's 6.1 kernel with its
# tls module loaded (kTLS), and AES-GCM's modules: the kernel cannot load
# them on demand there (its module helper does not see the host's root),
# and without them kTLS refuses every key.  Prints tls.sh's lines and
# exits with run-in-vm.sh's status.
#
# Usage: tls-host.sh [test|bench [SIZE_MIB]]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
exec sh "$here/run-in-vm.sh" -v --modules "tls ctr ghash_generic gcm" "$here/tls.sh" "$@"
