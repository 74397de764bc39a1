#!/usr/bin/env bash
# Prints the path of a reference dockerd — Debian's docker.io (dockerd 20.10) — on stdout, for the
# interop tests (apps/daemon/test/plugins-dockerd.test.ts) and the benchmark. Nothing is installed
# system-wide and the docker CLI on PATH is left alone: the package is fetched with
# `apt-get download` and unpacked with `dpkg -x` into a cache directory, once.
#
#   scripts/ensure-dockerd.sh            # → /var/cache/berth-dockerd/root/usr/sbin/dockerd
#
# Environment:
#   BERTH_DOCKERD        use this dockerd binary instead (checked, then printed)
#   BERTH_DOCKERD_CACHE  the cache directory (default /var/cache/berth-dockerd)
#
# When no dockerd can be had, the reason goes to stderr and the exit status is 1. The shared
# libraries dockerd links (libdevmapper1.02.1, libsystemd0) are installed with apt-get when they
# are missing and this runs as root. Concurrent callers wait for each other (flock).
set -euo pipefail

fail() { printf 'ensure-dockerd: %s\n' "$*" >&2; exit 1; }

check() {
  local bin=$1
  [ -x "$bin" ] || fail "$bin is not an executable file"
  local missing
  missing=$(ldd "$bin" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')
  if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libdevmapper1.02.1 libsystemd0 >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libdevmapper1.02.1 libsystemd0 >/dev/null 2>&1; } ||
        fail "dockerd's libraries are missing ($missing) and apt-get could not install libdevmapper1.02.1 libsystemd0"
      missing=$(ldd "$bin" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')
    fi
    [ -z "$missing" ] || fail "dockerd's libraries are missing: $missing(Debian: apt-get install libdevmapper1.02.1 libsystemd0)"
  fi
  "$bin" --version >/dev/null 2>&1 || fail "$bin --version failed: $("$bin" --version 2>&1 | tail -1)"
  printf '%s\n' "$bin"
}

if [ -n "${BERTH_DOCKERD:-}" ]; then
  check "$BERTH_DOCKERD"
  exit 0
fi

cache=${BERTH_DOCKERD_CACHE:-/var/cache/berth-dockerd}
bin=$cache/root/usr/sbin/dockerd
mkdir -p "$cache" 2>/dev/null || fail "cannot create $cache (run as root, or set BERTH_DOCKERD_CACHE)"
command -v flock >/dev/null || fail "flock (util-linux) is missing"
exec 9>"$cache/.lock"
flock 9

if [ ! -x "$bin" ]; then
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || fail "no apt-get/dpkg to fetch Debian's docker.io"
  mkdir -p "$cache/debs"
  if ! (cd "$cache/debs" && apt-get download docker.io >/dev/null 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$cache/debs" && apt-get download docker.io >/dev/null 2>"$cache/download.log") ||
      fail "apt-get download docker.io failed: $(tail -2 "$cache/download.log" | tr '\n' ' ')"
  fi
  deb=$(ls -1 "$cache"/debs/docker.io_*.deb 2>/dev/null | sort | tail -1)
  [ -n "$deb" ] || fail "apt-get download docker.io left no .deb in $cache/debs"
  tmp=$cache/root.tmp.$$
  rm -rf "$tmp"
  dpkg -x "$deb" "$tmp" || { rm -rf "$tmp"; fail "dpkg -x $deb failed"; }
  rm -rf "$cache/root"
  mv "$tmp" "$cache/root"
fi

check "$bin"
