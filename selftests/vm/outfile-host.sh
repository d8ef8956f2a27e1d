#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# On the host: run vm/outfile.sh in a VM booting Debian's 6.1 kernel with
# its overlay module, whose overlayfs has no O_TMPFILE.  Prints
# outfile.sh's lines and exits with run-in-vm.sh's status.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
exec sh "$here/run-in-vm.sh" -v --modules "overlay" "$here/outfile.sh" "$@"
