#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The kernel's vsock_test through the userspace engine's forwarding to host
# AF_VSOCK, in the nested set-up: run-nested.sh --forward (see its header).
# A script of its own so that scripts/test.sh runs it as one more rig.
#
#   run-nested-forward.sh
#
# Environment: as run-nested.sh (VUV_BUILD, VUV_CACHE, VUV_LOGS, VUV_QEMU,
# VUV_KERNEL, VUV_NESTED_*).
set -euo pipefail
[ $# -eq 0 ] || { echo "usage: run-nested-forward.sh (no arguments)" >&2; exit 1; }
exec bash "$(dirname "$0")/run-nested.sh" --forward
