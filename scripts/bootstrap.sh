#!/usr/bin/env bash
# Installs what berth needs to build on a fresh Debian machine with Node 20 and npm:
# the compilers for better-sqlite3's native build, pnpm at the pinned version, the workspace's
# dependencies, and the build itself. Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

apt_packages=()
for tool in python3 make g++; do command -v "$tool" >/dev/null || apt_packages+=("$tool"); done
# Extra Debian packages a step asks for (the test command passes the ones its tests need).
for pkg in ${BERTH_APT_PACKAGES:-}; do dpkg -s "$pkg" >/dev/null 2>&1 || apt_packages+=("$pkg"); done
if [ ${#apt_packages[@]} -gt 0 ]; then
  say "installing Debian packages: ${apt_packages[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

pnpm_version=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if [ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_version" ]; then
  say "installing pnpm $pnpm_version"
  if ! npm install -g "pnpm@$pnpm_version" >/dev/null 2>&1; then
    # Without write access to npm's global prefix, install under the user's home.
    npm install -g --prefix "$HOME/.local" "pnpm@$pnpm_version" >/dev/null
    export PATH="$HOME/.local/bin:$PATH"
  fi
fi

# No prebuilt better-sqlite3 binary can be downloaded here: node-gyp compiles it against the
# machine's own Node headers.
if [ -d /usr/include/node ] && [ -z "${npm_config_nodedir:-}" ]; then export npm_config_nodedir=/usr; fi

say "installing dependencies"
pnpm install --frozen-lockfile --reporter=append-only 2>&1 | grep -vE '^\.\.\./.*better-sqlite3 install: ' || true
test -d node_modules/.pnpm || { echo "pnpm install failed" >&2; exit 1; }

export TURBO_TELEMETRY_DISABLED=1
say "building"
pnpm run build >/dev/null
