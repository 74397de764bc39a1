#!/usr/bin/env bash
# Installs berth and starts berthd on the embedded default: a data-root under your home directory,
# SQLite metadata, and a unix socket whose DOCKER_HOST line it prints. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
data_root=${BERTH_DATA_ROOT:-${XDG_DATA_HOME:-$HOME/.local/share}/berth}
mkdir -p "$data_root"
exec node apps/daemon/dist/main.js --data-root "$data_root" --exec-root "$data_root/run" \
  --host "unix://$data_root/berth.sock" --pidfile "$data_root/berthd.pid" "$@"
