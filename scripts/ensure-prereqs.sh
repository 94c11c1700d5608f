#!/usr/bin/env bash
# Makes this machine ready for the test suite, and says what it does. Safe to run any number of
# times: each step checks first and only acts when something is missing.
#   1. npm dependencies (installed when node_modules is missing or older than the lockfile)
#   2. the local PostgreSQL server on 127.0.0.1:5432 (started when it does not answer)
#   3. Debian packages the suite drives as real parts (installed when their command is missing)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the suite needs, as `package` or `package:command` when the command it provides
# has another name. Add to this one list; the rest of the script follows.
# busybox-static: the installer tests copy /bin/busybox into their container images, so it must be
# the static build; docker.io gives the docker CLI (its daemon is not used: podman serves the API).
DEBIAN_PACKAGES="chromium dash busybox-static:busybox openssl curl shellcheck docker-registry skopeo podman runc docker-compose docker.io:docker apache2-utils:htpasswd"

PG_HOST=127.0.0.1
PG_PORT=5432

say() { printf '[prereqs] %s\n' "$*"; }
fail() { printf '[prereqs] ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. npm dependencies ---------------------------------------------------------------------
# npm keeps its own record of what it installed in node_modules/.package-lock.json.
installed_record=node_modules/.package-lock.json
needs_install=""
if [ ! -d node_modules ] || [ ! -f "$installed_record" ]; then
  needs_install="node_modules is missing"
else
  for f in package-lock.json package.json */package.json; do
    if [ -f "$f" ] && [ "$f" -nt "$installed_record" ]; then
      needs_install="$f changed since the last install"
      break
    fi
  done
fi
if [ -n "$needs_install" ]; then
  say "Installing npm dependencies ($needs_install)…"
  npm install --no-audit --no-fund || fail "npm install failed; see the output above."
else
  say "npm dependencies are up to date."
fi

# --- 2. PostgreSQL ---------------------------------------------------------------------------
if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then
  say "PostgreSQL answers on $PG_HOST:$PG_PORT."
else
  command -v pg_ctlcluster >/dev/null 2>&1 \
    || fail "PostgreSQL does not answer on $PG_HOST:$PG_PORT and pg_ctlcluster is not installed to start it."
  # The newest installed major version, e.g. 15.
  version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || fail "PostgreSQL does not answer on $PG_HOST:$PG_PORT and no cluster exists under /etc/postgresql."
  say "PostgreSQL does not answer on $PG_HOST:$PG_PORT; starting cluster $version/main…"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start \
    || fail "could not start PostgreSQL $version/main (pg_ctlcluster failed; see the output above)."
  for _ in $(seq 1 30); do
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null && break
    sleep 1
  done
  pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null \
    || fail "PostgreSQL $version/main started but does not answer on $PG_HOST:$PG_PORT after 30 s."
  say "PostgreSQL is up."
fi

# --- 3. Debian packages ----------------------------------------------------------------------
missing_packages=()
for item in $DEBIAN_PACKAGES; do
  pkg=${item%%:*}
  cmd=${item#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing_packages+=("$pkg")
done

if [ ${#missing_packages[@]} -eq 0 ]; then
  say "Debian packages present: $DEBIAN_PACKAGES."
else
  say "Installing Debian packages: ${missing_packages[*]}…"
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    fail "missing Debian packages (${missing_packages[*]}) and neither root nor sudo is available to install them."
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update \
    || fail "apt-get update failed, so these packages could not be installed: ${missing_packages[*]}."
  "${as_root[@]}" apt-get install -y --no-install-recommends "${missing_packages[@]}" \
    || fail "apt-get install failed for: ${missing_packages[*]}."
  still_missing=()
  for item in $DEBIAN_PACKAGES; do
    pkg=${item%%:*}
    cmd=${item#*:}
    command -v "$cmd" >/dev/null 2>&1 || still_missing+=("$pkg (command $cmd)")
  done
  [ ${#still_missing[@]} -eq 0 ] || fail "installed, but these commands are still missing: ${still_missing[*]}."
  say "Debian packages installed."
fi

say "Ready."
