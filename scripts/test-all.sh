#!/usr/bin/env bash
# Installs everything the tests need, checks the code's rules (`pnpm lint`: ESLint with the floors,
# floating promises and no console in libraries, then the cycle check) and runs every test of the
# workspace. With CI set, a test that needs a real part (docker CLI, mounts, containerd) and skipped
# fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH_APT_PACKAGES="${BERTH_APT_PACKAGES:-containerd runc busybox-static docker-registry apache2-utils openssl libdevmapper1.02.1 libsystemd0 docker-compose python3-docker prometheus podman etcd-server}" ./scripts/bootstrap.sh
echo "==> pnpm lint" >&2
TURBO_TELEMETRY_DISABLED=1 pnpm lint
exec node scripts/run-tests.mjs "$@"
