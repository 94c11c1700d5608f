#!/bin/sh
# shellcheck disable=SC2034,SC2154
# (SC2034: the OP_* variables set here are read by the commands that source this file; SC2154:
# op_svc, op_cmd, op_url … are assigned through eval from the numbered OUTPOST_* settings.)
# Outpost site installer: the shared functions of scripts/install, verify, self-check, backup,
# restore, rollback, status and report (docs/site-install.md). POSIX sh: dash and busybox ash.
# Sourced by each command after it set OP_SCRIPTS (the folder holding these scripts).
#
# Settings (environment):
#   OUTPOST_STATE_DIR     the site's state folder (default /var/lib/outpost)
#   OUTPOST_ENGINE        docker or podman (default: the first that answers)
#   OUTPOST_COMPOSE       "docker compose" (plugin, v2) or docker-compose (v1) (default: the first found)
#   OUTPOST_PROJECT       the compose project name (default COMPOSE_PROJECT_NAME of the bundle, else outpost)
#   OUTPOST_KEEP_BACKUPS  complete backups kept (default 3; the last good one is never removed)
#   OUTPOST_SCHEDULER     auto (systemd timer, else cron), cron, systemd or none
#   OUTPOST_CRON_DIR      where the cron file goes (default /etc/cron.d)
#   OUTPOST_LANG          en, fr or pt: overrides LANG and the site's language
# Knobs for tests only: OUTPOST_TEST_DISK_FREE_KB (free space to assume), OUTPOST_TEST_CRASH_AT
# (a step name: the script kills itself right after recording that step, like a power cut).

OP_STATE=${OUTPOST_STATE_DIR:-/var/lib/outpost}
OP_LOG=
OP_ENGINE=
OP_COMPOSE=
OP_JSON_AWK="$OP_SCRIPTS/lib/json.awk"

# ---------------------------------------------------------------------------------------------
# Words: every message has an English text; French and Portuguese files override what they have.

op_pick_language() {
  op_lang=${OUTPOST_LANG:-}
  if [ -z "$op_lang" ]; then
    case ${LC_ALL:-${LANG:-}} in
      fr*) op_lang=fr ;;
      pt*) op_lang=pt ;;
      en*) op_lang=en ;;
      *) op_lang=${OP_SITE_LANGUAGE:-en} ;;
    esac
  fi
  case $op_lang in en | fr | pt) ;; *) op_lang=en ;; esac
  # shellcheck source=lib/messages-en.sh disable=SC1091
  . "$OP_SCRIPTS/lib/messages-en.sh"
  if [ "$op_lang" != en ] && [ -r "$OP_SCRIPTS/lib/messages-$op_lang.sh" ]; then
    # shellcheck disable=SC1090
    . "$OP_SCRIPTS/lib/messages-$op_lang.sh"
  fi
}

# The text of message $1 filled with the other arguments.
op_text() {
  op_key=$1
  shift
  eval "op_fmt=\${m_$op_key:-$op_key}"
  # shellcheck disable=SC2059,SC2154
  printf -- "$op_fmt" "$@"
}

op_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
op_epoch() { date -u +%s; }

op_logline() {
  if [ -n "$OP_LOG" ]; then printf '%s %s\n' "$(op_now)" "$1" >>"$OP_LOG" 2>/dev/null || :; fi
}

# say KEY ARGS: one step in plain words, on the screen and in the log.
say() {
  op_line=$(op_text "$@")
  printf '%s\n' "$op_line"
  op_logline "$op_line"
}

# warn KEY ARGS: the same on standard error.
warn() {
  op_line=$(op_text "$@")
  printf '%s\n' "$op_line" >&2
  op_logline "WARNING: $op_line"
}

# die KEY ARGS: say why and stop (exit 1).
die() {
  op_line=$(op_text "$@")
  printf '%s\n' "$op_line" >&2
  op_logline "STOPPED: $op_line"
  # Stopped before anything running was touched: there is nothing for a second run to finish.
  case ${J_STEP:-} in verify | preflight | backup | load | copy) op_journal_clear ;; esac
  op_unlock
  exit 1
}

# A line for the log only (commands' own output, details for the coordinator).
op_log() { op_logline "$*"; }

# Runs a command with its output going to the log only.
op_quiet() {
  if [ -n "$OP_LOG" ]; then
    op_logline "\$ $*"
    "$@" >>"$OP_LOG" 2>&1
  else
    "$@" >/dev/null 2>&1
  fi
}

# ---------------------------------------------------------------------------------------------
# The state folder.

op_init_state() {
  umask 077
  mkdir -p "$OP_STATE" "$OP_STATE/log" "$OP_STATE/releases" "$OP_STATE/backups" "$OP_STATE/queue" "$OP_STATE/receipts" "$OP_STATE/keys" 2>/dev/null ||
    { printf '%s\n' "$(op_text state_unwritable "$OP_STATE")" >&2; exit 1; }
  OP_LOG="$OP_STATE/log/outpost-$(date -u +%Y-%m).log"
  : >>"$OP_LOG"
}

# Atomic small files: written beside, then renamed over.
op_write() {
  printf '%s\n' "$2" >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}

op_read() {
  if [ -r "$1" ]; then sed -n '1p' "$1"; fi
}

# One command at a time: a lock folder holding the pid; a lock left by a dead process is taken over.
op_lock() {
  op_tries=0
  while ! mkdir "$OP_STATE/lock" 2>/dev/null; do
    op_holder=$(op_read "$OP_STATE/lock/pid")
    if [ -n "$op_holder" ] && kill -0 "$op_holder" 2>/dev/null; then
      die busy "$op_holder"
    fi
    op_tries=$((op_tries + 1))
    [ "$op_tries" -lt 5 ] || die busy "?"
    rm -rf "$OP_STATE/lock"
  done
  printf '%s\n' "$$" >"$OP_STATE/lock/pid"
  OP_LOCKED=1
}

op_unlock() {
  if [ "${OP_LOCKED:-}" = 1 ]; then
    rm -rf "$OP_STATE/lock"
    OP_LOCKED=
  fi
}

# The journal of an install: the step reached, so that a second run after a power cut finishes
# the job or undoes it. Sourced back; every value single-quoted.
op_journal() {
  J_STEP=$1
  {
    printf "J_STEP='%s'\n" "$J_STEP"
    printf "J_VERSION='%s'\n" "${J_VERSION:-}"
    printf "J_FROM='%s'\n" "${J_FROM:-}"
    printf "J_BACKUP='%s'\n" "${J_BACKUP:-}"
    printf "J_OUTCOME='%s'\n" "${J_OUTCOME:-}"
    printf "J_STARTED='%s'\n" "${J_STARTED:-}"
  } >"$OP_STATE/journal.tmp" && mv -f "$OP_STATE/journal.tmp" "$OP_STATE/journal"
  op_log "journal: step $J_STEP (version ${J_VERSION:-?}, from ${J_FROM:-none})"
  if [ "${OUTPOST_TEST_CRASH_AT:-}" = "$J_STEP" ]; then
    op_log "test: stopping hard at step $J_STEP"
    kill -9 $$
  fi
}

op_journal_clear() { rm -f "$OP_STATE/journal"; }

# Single-quoted for sh: ' becomes '\''.
op_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# ---------------------------------------------------------------------------------------------
# JSON (manifest.json, API answers), flattened by lib/json.awk.

op_json_flat() { awk -f "$OP_JSON_AWK" "$1"; }

# json_get FLATFILE PATH: the value at PATH (files.0.path), empty when absent.
json_get() { awk -F '\t' -v k="$2" '$1 == k { print $2; exit }' "$1"; }

op_json_string() { printf '%s' "$1" | sed 's/[\\"]/\\&/g' | tr -d '\000-\037'; }

# ---------------------------------------------------------------------------------------------
# Checksums, sizes, disk.

op_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | sed 's/ .*//'
  else
    openssl dgst -sha256 "$1" | sed 's/.*= *//'
  fi
}

op_size() { wc -c <"$1" | tr -d ' '; }

# Free kilobytes on the filesystem holding $1.
op_free_kb() {
  if [ -n "${OUTPOST_TEST_DISK_FREE_KB:-}" ]; then
    printf '%s\n' "$OUTPOST_TEST_DISK_FREE_KB"
    return
  fi
  df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'
}

op_human_kb() {
  awk -v k="$1" 'BEGIN { if (k >= 1048576) printf "%.1f GB", k / 1048576; else if (k >= 1024) printf "%d MB", k / 1024; else printf "%d KB", k }'
}

# Compares two versions: prints lt, eq or gt. Dotted numbers compare as numbers; a pre-release
# (1.2.0-rc.1) comes before its release; build metadata (+…) is ignored.
op_version_cmp() {
  awk -v a="$1" -v b="$2" '
    function core(v) { sub(/\+.*/, "", v); return v }
    BEGIN {
      a = core(a); b = core(b); if (a == b) { print "eq"; exit }
      pa = a; pb = b; ra = ""; rb = ""
      if (index(a, "-")) { ra = substr(a, index(a, "-") + 1); pa = substr(a, 1, index(a, "-") - 1) }
      if (index(b, "-")) { rb = substr(b, index(b, "-") + 1); pb = substr(b, 1, index(b, "-") - 1) }
      sub(/^v/, "", pa); sub(/^v/, "", pb)
      na = split(pa, x, "."); nb = split(pb, y, "."); n = na > nb ? na : nb
      for (i = 1; i <= n; i++) { u = x[i] + 0; w = y[i] + 0; if (u < w) { print "lt"; exit } if (u > w) { print "gt"; exit } }
      if (ra == rb) { print "eq"; exit }
      if (ra == "") { print "gt"; exit }
      if (rb == "") { print "lt"; exit }
      print (ra < rb) ? "lt" : "gt"
    }'
}

# ---------------------------------------------------------------------------------------------
# The bundle: where it is, what its manifest says.

# Sets OP_BUNDLE (a folder) from an argument (a folder or a .tar), or the folder these scripts are in.
op_find_bundle() {
  op_arg=${1:-}
  if [ -z "$op_arg" ]; then
    OP_BUNDLE=$(cd "$OP_SCRIPTS/.." && pwd)
  elif [ -d "$op_arg" ]; then
    OP_BUNDLE=$(cd "$op_arg" && pwd)
  elif [ -f "$op_arg" ]; then
    say unpacking "$op_arg"
    op_incoming="$OP_STATE/incoming"
    rm -rf "$op_incoming"
    mkdir -p "$op_incoming"
    tar -xf "$op_arg" -C "$op_incoming" 2>>"$OP_LOG" || die tar_broken "$op_arg"
    OP_BUNDLE=
    for op_d in "$op_incoming"/outpost-*; do
      if [ -d "$op_d" ]; then OP_BUNDLE=$op_d; fi
    done
    [ -n "$OP_BUNDLE" ] || die tar_broken "$op_arg"
  else
    die no_bundle "$op_arg"
  fi
  [ -f "$OP_BUNDLE/manifest.json" ] || die no_manifest "$OP_BUNDLE"
}

# Reads the manifest and the bundle's settings (compose/.env) into OP_* variables.
op_read_manifest() {
  OP_FLAT="$OP_STATE/manifest.flat"
  op_json_flat "$OP_BUNDLE/manifest.json" >"$OP_FLAT" || die manifest_unreadable
  [ "$(json_get "$OP_FLAT" format)" = outpost-bundle/1 ] || die manifest_format
  OP_SITE_ID=$(json_get "$OP_FLAT" site.id)
  OP_SITE_CODE=$(json_get "$OP_FLAT" site.code)
  OP_SITE_NAME=$(json_get "$OP_FLAT" site.name)
  OP_VERSION=$(json_get "$OP_FLAT" release.version)
  OP_FROM_VERSION=$(json_get "$OP_FLAT" fromRelease.version)
  OP_EXPIRES=$(json_get "$OP_FLAT" expires)
  OP_DELTA=$(json_get "$OP_FLAT" images.delta)
  OP_IMAGES=$(json_get "$OP_FLAT" images.path)
  case $OP_VERSION in '' | *[!A-Za-z0-9._+-]*) die manifest_format ;; esac
}

op_load_release_env() {
  # $1: a release folder (bundle or installed). Its compose/.env is written for sh and compose both.
  OP_SITE_LANGUAGE=
  OUTPOST_API_URL=
  COMPOSE_PROJECT_NAME=
  OUTPOST_CONTENT_VERSION=
  if [ -r "$1/compose/.env" ]; then
    # shellcheck disable=SC1091
    . "$1/compose/.env"
    OP_SITE_LANGUAGE=${OUTPOST_LANGUAGE:-}
  fi
  OP_PROJECT=${OUTPOST_PROJECT:-${COMPOSE_PROJECT_NAME:-outpost}}
}

# The x-outpost section of a release (compose/outpost.conf).
op_load_release_conf() {
  OUTPOST_WAIT_SECONDS=300
  OUTPOST_HEALTH_COUNT=0
  OUTPOST_SERVICE_COUNT=0
  if [ -r "$1/compose/outpost.conf" ]; then
    # shellcheck disable=SC1091
    . "$1/compose/outpost.conf"
  fi
}

op_current() { op_read "$OP_STATE/current"; }
op_previous() { op_read "$OP_STATE/previous"; }
op_release_dir() { printf '%s\n' "$OP_STATE/releases/$1"; }

# ---------------------------------------------------------------------------------------------
# verify: signature by the pinned key, every file's size and sha256, expiry, site.

op_fingerprint_hex() {
  openssl pkey -pubin -in "$1" -outform DER 2>/dev/null | openssl dgst -sha256 | sed 's/.*= *//'
}

op_verify_signature() {
  openssl dgst -sha256 -verify "$1" -signature "$OP_BUNDLE/manifest.sig" "$OP_BUNDLE/manifest.json" >/dev/null 2>&1
}

op_verify() {
  say verify_start "$OP_BUNDLE"
  op_pinned="$OP_STATE/keys/signing-key.pem"
  op_bundle_key="$OP_BUNDLE/keys/signing-key.pem"
  OP_NEW_KEY=
  if [ -f "$op_pinned" ]; then
    if ! op_verify_signature "$op_pinned"; then
      # Another key: accepted only when the pinned key endorsed it (its rotation statement).
      op_pin_hex=$(op_fingerprint_hex "$op_pinned" | cut -c1-16)
      op_endorsement="$OP_BUNDLE/keys/endorsed-by-$op_pin_hex.sig"
      if [ -f "$op_bundle_key" ] && [ -f "$op_endorsement" ] &&
        openssl dgst -sha256 -verify "$op_pinned" -signature "$op_endorsement" "$op_bundle_key" >/dev/null 2>&1 &&
        op_verify_signature "$op_bundle_key"; then
        say key_rotated
        OP_NEW_KEY=$op_bundle_key
      else
        die bad_signature
      fi
    fi
  else
    [ -f "$op_bundle_key" ] || die no_key
    op_verify_signature "$op_bundle_key" || die bad_signature
    op_fp=$(openssl pkey -pubin -in "$op_bundle_key" -outform DER 2>/dev/null | openssl dgst -sha256 -binary | openssl base64 -A)
    if [ -n "${OUTPOST_EXPECT_FINGERPRINT:-}" ] && [ "SHA256:$op_fp" != "$OUTPOST_EXPECT_FINGERPRINT" ]; then
      die fingerprint_mismatch "SHA256:$op_fp" "$OUTPOST_EXPECT_FINGERPRINT"
    fi
    say key_first "SHA256:$op_fp"
    OP_NEW_KEY=$op_bundle_key
  fi
  op_read_manifest

  op_now_s=$(op_epoch)
  op_exp_s=$(op_iso_epoch "$OP_EXPIRES")
  [ -n "$op_exp_s" ] || die manifest_format
  if [ "$op_exp_s" -le "$op_now_s" ]; then die expired "$OP_EXPIRES"; fi

  op_here=$(op_read "$OP_STATE/site-id")
  if [ -n "$op_here" ] && [ "$op_here" != "$OP_SITE_ID" ]; then
    die wrong_site "$OP_SITE_CODE" "$(op_read "$OP_STATE/site-code")"
  fi

  op_i=0
  op_count=0
  while :; do
    op_path=$(json_get "$OP_FLAT" "files.$op_i.path")
    [ -n "$op_path" ] || break
    op_want_size=$(json_get "$OP_FLAT" "files.$op_i.size")
    op_want_sha=$(json_get "$OP_FLAT" "files.$op_i.sha256")
    case $op_path in /* | *..* ) die bad_path "$op_path" ;; esac
    op_file="$OP_BUNDLE/$op_path"
    [ -f "$op_file" ] || die file_missing "$op_path"
    op_got_size=$(op_size "$op_file")
    [ "$op_got_size" = "$op_want_size" ] || die file_size "$op_path" "$op_got_size" "$op_want_size"
    if [ "$op_path" = "$OP_IMAGES" ]; then say verify_images "$(op_human_kb $((op_got_size / 1024)))"; fi
    [ "$(op_sha256 "$op_file")" = "$op_want_sha" ] || die file_changed "$op_path"
    op_i=$((op_i + 1))
    op_count=$((op_count + 1))
  done
  [ "$op_count" -gt 0 ] || die manifest_format
  say verify_ok "$op_count" "$OP_SITE_CODE" "$OP_VERSION"
}

# Seconds since 1970 of an ISO time (2025-03-04T10:22:07.000Z), in shell arithmetic (no date -d).
op_iso_epoch() {
  printf '%s\n' "$1" | awk '{
    if (!match($0, /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]/)) exit
    y = substr($0, 1, 4) + 0; m = substr($0, 6, 2) + 0; d = substr($0, 9, 2) + 0
    H = substr($0, 12, 2) + 0; M = substr($0, 15, 2) + 0; S = substr($0, 18, 2) + 0
    if (m <= 2) { y -= 1 }
    era = int(y / 400); yoe = y - era * 400
    mp = (m > 2) ? m - 3 : m + 9
    doy = int((153 * mp + 2) / 5) + d - 1
    doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
    days = era * 146097 + doe - 719468
    printf "%d\n", days * 86400 + H * 3600 + M * 60 + S
  }'
}

# ---------------------------------------------------------------------------------------------
# The container engine and compose.

op_detect_engine() {
  if [ -n "${OUTPOST_ENGINE:-}" ]; then
    OP_ENGINE=$OUTPOST_ENGINE
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    OP_ENGINE=docker
  elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
    OP_ENGINE=podman
  else
    if command -v docker >/dev/null 2>&1 || command -v podman >/dev/null 2>&1; then return 2; fi
    return 1
  fi
  "$OP_ENGINE" info >/dev/null 2>&1 || return 2
  # Podman (also behind its Docker-compatible socket) runs health checks from systemd timers; where
  # there are none, the installer runs them itself while it waits.
  OP_PODMAN_HEALTH=
  if command -v podman >/dev/null 2>&1; then
    if [ "$OP_ENGINE" = podman ] || "$OP_ENGINE" version --format '{{range .Server.Components}}{{.Name}};{{end}}' 2>/dev/null | grep -q Podman; then
      OP_PODMAN_HEALTH=1
    fi
  fi
}

op_detect_compose() {
  if [ -n "${OUTPOST_COMPOSE:-}" ]; then
    OP_COMPOSE=$OUTPOST_COMPOSE
  elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    OP_COMPOSE="docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    OP_COMPOSE=docker-compose
  else
    return 1
  fi
}

engine() { "$OP_ENGINE" "$@"; }

# compose RELEASEDIR ARGS: compose for one release's files, under the site's project name.
compose() {
  op_cdir="$1/compose"
  shift
  if [ "$OP_COMPOSE" = "docker compose" ]; then
    (cd "$op_cdir" && docker compose -p "$OP_PROJECT" -f docker-compose.yml "$@")
  else
    # shellcheck disable=SC2086
    (cd "$op_cdir" && $OP_COMPOSE -p "$OP_PROJECT" -f docker-compose.yml "$@")
  fi
}

# The project's containers, one id a line.
op_containers() {
  engine ps -a -q --filter "label=com.docker.compose.project=$OP_PROJECT" 2>/dev/null
}

# The running container of a service.
op_service_container() {
  engine ps -q --filter "label=com.docker.compose.project=$OP_PROJECT" --filter "label=com.docker.compose.service=$1" 2>/dev/null | sed -n '1p'
}

op_http_ok() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 5 -o /dev/null "$1" 2>/dev/null
  else
    # shellcheck disable=SC2046
    wget -q -T 5 $(op_wget_once) -O /dev/null "$1" 2>/dev/null
  fi
}

# GNU wget tries 20 times by default; busybox wget tries once and knows no -t.
op_wget_once() {
  if wget --version 2>/dev/null | grep -q GNU; then printf '%s' '-t 1'; fi
}

# ---------------------------------------------------------------------------------------------
# Health and self-check.

# Sets OP_HEALTH_BAD to a description of what is not yet up (empty when all is well) and writes
# the checks, one "name<TAB>ok|fail<TAB>message" a line, to $OP_STATE/checks.
op_health_once() {
  OP_HEALTH_BAD=
  : >"$OP_STATE/checks.tmp"
  op_ids=$(op_containers)
  if [ -z "$op_ids" ]; then
    OP_HEALTH_BAD=$(op_text health_no_containers)
    printf 'containers\tfail\t%s\n' "$OP_HEALTH_BAD" >>"$OP_STATE/checks.tmp"
  fi
  for op_id in $op_ids; do
    op_st=$(engine inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$op_id" 2>/dev/null) || op_st="$op_id gone none"
    case "${OP_PODMAN_HEALTH:-}:$op_st" in
      1:*' running starting' | 1:*' running unhealthy')
        podman healthcheck run "$op_id" >/dev/null 2>&1 || :
        op_st=$(engine inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$op_id" 2>/dev/null) || op_st="$op_id gone none"
        ;;
    esac
    # shellcheck disable=SC2086
    set -- $op_st
    op_name=${1#/}
    if [ "$2" = running ] && { [ "$3" = healthy ] || [ "$3" = none ]; }; then
      printf 'container %s\tok\t%s\n' "$op_name" "$2${3:+ $3}" >>"$OP_STATE/checks.tmp"
    else
      OP_HEALTH_BAD="$OP_HEALTH_BAD $op_name ($2, $3)"
      printf 'container %s\tfail\t%s\n' "$op_name" "$2 $3" >>"$OP_STATE/checks.tmp"
    fi
  done
  op_h=1
  while [ "$op_h" -le "${OUTPOST_HEALTH_COUNT:-0}" ]; do
    eval "op_url=\$OUTPOST_HEALTH_$op_h"
    if op_http_ok "$op_url"; then
      printf 'http %s\tok\tanswers\n' "$op_url" >>"$OP_STATE/checks.tmp"
    else
      OP_HEALTH_BAD="$OP_HEALTH_BAD $op_url"
      printf 'http %s\tfail\tno answer\n' "$op_url" >>"$OP_STATE/checks.tmp"
    fi
    op_h=$((op_h + 1))
  done
  mv -f "$OP_STATE/checks.tmp" "$OP_STATE/checks"
  [ -z "$OP_HEALTH_BAD" ]
}

# Waits up to OUTPOST_WAIT_SECONDS (the release's migration wait) for everything to be up.
op_wait_healthy() {
  op_deadline=$(($(op_epoch) + ${OUTPOST_WAIT_SECONDS:-300}))
  op_said=0
  while :; do
    if op_health_once; then return 0; fi
    if [ "$(op_epoch)" -ge "$op_deadline" ]; then
      op_log "still not up after ${OUTPOST_WAIT_SECONDS}s:$OP_HEALTH_BAD"
      return 1
    fi
    op_said=$((op_said + 1))
    if [ $((op_said % 30)) -eq 0 ]; then say still_waiting "$OP_HEALTH_BAD"; fi
    sleep 1
  done
}

# self-check of the running release: containers, health URLs, disk. Records $OP_STATE/last-check.
op_self_check() {
  say selfcheck_start
  op_ok=0
  op_health_once || op_ok=1
  op_free=$(op_free_kb "$OP_STATE")
  if [ -n "$op_free" ] && [ "$op_free" -lt "${OUTPOST_MIN_FREE_KB:-1048576}" ]; then
    printf 'disk\tfail\t%s free\n' "$(op_human_kb "$op_free")" >>"$OP_STATE/checks"
    op_ok=1
  else
    printf 'disk\tok\t%s free\n' "$(op_human_kb "${op_free:-0}")" >>"$OP_STATE/checks"
  fi
  while IFS="$(printf '\t')" read -r op_cn op_cs op_cm; do
    if [ "$op_cs" = ok ]; then say check_ok "$op_cn" "$op_cm"; else say check_fail "$op_cn" "$op_cm"; fi
  done <"$OP_STATE/checks"
  {
    printf "LAST_CHECK_AT='%s'\n" "$(op_now)"
    if [ "$op_ok" = 0 ]; then printf "LAST_CHECK_OK='yes'\n"; else printf "LAST_CHECK_OK='no'\n"; fi
    printf "LAST_CHECK_VERSION='%s'\n" "$(op_current)"
  } >"$OP_STATE/last-check.tmp" && mv -f "$OP_STATE/last-check.tmp" "$OP_STATE/last-check"
  cp "$OP_STATE/checks" "$OP_STATE/last-check.checks"
  return "$op_ok"
}

# The checks as the API's healthChecks JSON array.
op_checks_json() {
  printf '['
  op_sep=
  if [ -r "$1" ]; then
    while IFS="$(printf '\t')" read -r op_cn op_cs op_cm; do
      [ -n "$op_cn" ] || continue
      if [ "$op_cs" = ok ]; then op_b=true; else op_b=false; fi
      printf '%s{"name":"%s","ok":%s,"message":"%s"}' "$op_sep" "$(op_json_string "$op_cn" | cut -c1-100)" "$op_b" "$(op_json_string "$op_cm" | cut -c1-400)"
      op_sep=,
    done <"$1"
  fi
  printf ']'
}

# ---------------------------------------------------------------------------------------------
# Backups: each service's backup command, run in its container; its output is the backup.

# op_backup RELEASEDIR LABEL: sets OP_BACKUP_ID (empty when the release declares nothing to back up).
op_backup() {
  op_rel=$1
  op_load_release_conf "$op_rel"
  OP_BACKUP_ID=
  if [ "${OUTPOST_SERVICE_COUNT:-0}" -eq 0 ]; then
    say backup_nothing
    return 0
  fi
  op_version=$(basename "$op_rel")
  OP_BACKUP_ID="$(date -u +%Y%m%dT%H%M%SZ)-$op_version-$2"
  op_dir="$OP_STATE/backups/$OP_BACKUP_ID"
  rm -rf "$op_dir.partial"
  mkdir -p "$op_dir.partial"
  op_s=1
  while [ "$op_s" -le "$OUTPOST_SERVICE_COUNT" ]; do
    eval "op_svc=\$OUTPOST_SERVICE_$op_s; op_cmd=\$OUTPOST_BACKUP_$op_s"
    say backup_service "$op_svc"
    op_cid=$(op_service_container "$op_svc")
    if [ -z "$op_cid" ]; then rm -rf "$op_dir.partial"; warn backup_not_running "$op_svc"; return 1; fi
    op_log "backup of $op_svc: $op_cmd"
    # shellcheck disable=SC2154
    if ! engine exec "$op_cid" sh -c "$op_cmd" >"$op_dir.partial/$op_svc.dump" 2>>"$OP_LOG"; then
      rm -rf "$op_dir.partial"
      warn backup_failed "$op_svc"
      return 1
    fi
    op_s=$((op_s + 1))
  done
  (cd "$op_dir.partial" && for f in *.dump; do printf '%s  %s\n' "$(op_sha256 "$f")" "$f"; done >SHA256SUMS)
  {
    printf "BACKUP_VERSION='%s'\n" "$op_version"
    printf "BACKUP_AT='%s'\n" "$(op_now)"
    printf "BACKUP_LABEL='%s'\n" "$2"
  } >"$op_dir.partial/info"
  mv "$op_dir.partial" "$op_dir"
  op_write "$OP_STATE/last-backup" "$OP_BACKUP_ID"
  say backup_done "$OP_BACKUP_ID" "$(op_human_kb "$(du -sk "$op_dir" | awk '{ print $1 }')")"
  op_prune_backups
}

# Keeps the newest OUTPOST_KEEP_BACKUPS complete backups, and always the last good one.
op_prune_backups() {
  op_keep=${OUTPOST_KEEP_BACKUPS:-3}
  op_good=$(op_read "$OP_STATE/last-good-backup")
  rm -rf "$OP_STATE"/backups/*.partial
  # Names start with the UTC time, so the listing is oldest first.
  op_total=$(find "$OP_STATE/backups" -mindepth 1 -maxdepth 1 -type d | wc -l | tr -d ' ')
  for op_b in "$OP_STATE"/backups/*; do
    [ -d "$op_b" ] || continue
    [ "$op_total" -gt "$op_keep" ] || break
    op_name=$(basename "$op_b")
    [ "$op_name" != "$op_good" ] || continue
    rm -rf "$op_b"
    op_log "removed old backup $op_name"
    op_total=$((op_total - 1))
  done
}

# op_restore RELEASEDIR BACKUPID [--if-changed]: puts each service's backup back with its restore command.
op_restore() {
  op_rel=$1
  op_dir="$OP_STATE/backups/$2"
  [ -f "$op_dir/info" ] || die backup_missing "$2"
  (cd "$op_dir" && while read -r op_sum op_f; do [ "$(op_sha256 "$op_f")" = "$op_sum" ] || exit 1; done <SHA256SUMS) || die backup_damaged "$2"
  op_load_release_conf "$op_rel"
  op_s=1
  while [ "$op_s" -le "$OUTPOST_SERVICE_COUNT" ]; do
    eval "op_svc=\$OUTPOST_SERVICE_$op_s; op_cmd=\$OUTPOST_RESTORE_$op_s; op_dump_cmd=\$OUTPOST_BACKUP_$op_s"
    op_s=$((op_s + 1))
    [ -f "$op_dir/$op_svc.dump" ] || continue
    op_cid=$(op_service_container "$op_svc")
    [ -n "$op_cid" ] || { warn backup_not_running "$op_svc"; return 1; }
    if [ "${3:-}" = --if-changed ]; then
      # The data as it is now, compared with the backup: restored only when the new release changed it.
      if engine exec "$op_cid" sh -c "$op_dump_cmd" >"$OP_STATE/compare.dump" 2>>"$OP_LOG" &&
        [ "$(op_sha256 "$OP_STATE/compare.dump")" = "$(op_sha256 "$op_dir/$op_svc.dump")" ]; then
        rm -f "$OP_STATE/compare.dump"
        say restore_unchanged "$op_svc"
        continue
      fi
      rm -f "$OP_STATE/compare.dump"
    fi
    say restore_service "$op_svc" "$2"
    op_log "restore of $op_svc: $op_cmd"
    # shellcheck disable=SC2154
    engine exec -i "$op_cid" sh -c "$op_cmd" <"$op_dir/$op_svc.dump" >>"$OP_LOG" 2>&1 || { warn restore_failed "$op_svc"; return 1; }
  done
}

# ---------------------------------------------------------------------------------------------
# Images.

op_load_images() {
  op_archive="$OP_BUNDLE/$OP_IMAGES"
  if [ "$OP_DELTA" = true ]; then
    op_cur=$(op_current)
    if [ "$op_cur" != "$OP_FROM_VERSION" ]; then
      die delta_base "$OP_FROM_VERSION" "${op_cur:-?}" "$OP_VERSION"
    fi
  fi
  say load_start "$(op_human_kb $(($(op_size "$op_archive") / 1024)))"
  if [ "$OP_ENGINE" = podman ]; then
    gzip -dc "$op_archive" | podman load >>"$OP_LOG" 2>&1 || op_load_failed
  else
    docker load -i "$op_archive" >>"$OP_LOG" 2>&1 || op_load_failed
  fi
  # Every image the compose file names must now be here (no network is needed to start).
  sed -n 's/^[[:space:]]*image:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\).*/\1/p' "$OP_BUNDLE/compose/docker-compose.yml" >"$OP_STATE/images.list"
  while read -r op_ref; do
    engine image inspect "$op_ref" >/dev/null 2>&1 || op_load_failed "$op_ref"
  done <"$OP_STATE/images.list"
  say load_done
}

op_load_failed() {
  if [ "$OP_DELTA" = true ]; then
    die delta_layers_missing "$OP_FROM_VERSION" "$OP_VERSION"
  fi
  if [ -n "${1:-}" ]; then die image_missing "$1"; fi
  die load_failed
}

# ---------------------------------------------------------------------------------------------
# Releases: switch and roll back. One compose project; each release's files in releases/<version>.

op_copy_release() {
  op_dest=$(op_release_dir "$OP_VERSION")
  rm -rf "$op_dest.partial"
  mkdir -p "$op_dest.partial"
  for op_part in manifest.json manifest.sig README.txt compose scripts keys site; do
    if [ -e "$OP_BUNDLE/$op_part" ]; then cp -R "$OP_BUNDLE/$op_part" "$op_dest.partial/"; fi
  done
  rm -rf "$op_dest"
  mv "$op_dest.partial" "$op_dest"
}

# Stops a release's containers (its volumes stay).
op_stop_release() {
  [ -d "$1/compose" ] || return 0
  op_quiet compose "$1" down --remove-orphans || op_quiet compose "$1" down || :
}

op_start_release() {
  op_quiet compose "$1" up -d --remove-orphans
}

# The previous release back, its data as it was before the install (when the new one changed it).
# $1: previous version (may be empty: a first install), $2: the new version, $3: backup id.
op_roll_back() {
  say rollback_start "${1:-?}"
  op_new_dir=$(op_release_dir "$2")
  op_stop_release "$op_new_dir"
  if [ -z "$1" ]; then
    say rollback_nothing
    return 1
  fi
  op_prev_dir=$(op_release_dir "$1")
  op_load_release_conf "$op_prev_dir"
  op_start_release "$op_prev_dir" || { warn rollback_start_failed "$1"; return 1; }
  op_wait_healthy || :
  if [ -n "$3" ]; then
    op_restore "$op_prev_dir" "$3" --if-changed || return 1
  fi
  op_wait_healthy || :
  op_self_check
}

# ---------------------------------------------------------------------------------------------
# Receipts and reports.

# op_receipt VERSION OUTCOME: writes the receipt file and prints the receipt code.
op_receipt() {
  op_keyfile="$OP_STATE/receipt-key"
  op_site=$(op_read "$OP_STATE/site-id")
  if [ ! -r "$op_keyfile" ] || [ -z "$op_site" ]; then
    warn no_receipt_key
    return 0
  fi
  op_at=$(op_epoch)
  if [ "$op_at" -lt 1704067200 ]; then warn clock_wrong; return 0; fi
  op_prev=${J_FROM:-}
  {
    printf '{"previousVersion":"%s","checks":' "$(op_json_string "$op_prev")"
    op_checks_json "$OP_STATE/checks"
    printf '}'
  } >"$OP_STATE/receipt-details.json"
  op_name="$OP_STATE/receipts/$(date -u +%Y%m%dT%H%M%SZ)-$1-$2.json"
  RECEIPT_CODE_LIB=1
  # shellcheck source=lib/receipt-code.sh disable=SC1091
  . "$OP_SCRIPTS/lib/receipt-code.sh"
  if ! receipt_code_file "$(op_read "$op_keyfile")" "$op_site" "$1" "$2" "$op_at" "$OP_STATE/receipt-details.json" >"$op_name.tmp"; then
    warn receipt_failed
    return 0
  fi
  mv -f "$op_name.tmp" "$op_name"
  OP_RECEIPT_CODE=$(sed -n 's/^  "code": "\(.*\)",$/\1/p' "$op_name")
  op_write "$OP_STATE/last-receipt" "$op_name"
  say receipt_file "$op_name"
  say receipt_code "$OP_RECEIPT_CODE"
}

# op_queue_report STATUS IDEMPOTENCYKEY: the check-in body, queued on disk; `report` sends the queue.
op_queue_report() {
  op_ver=$(op_current)
  [ -n "$op_ver" ] || op_ver=${J_VERSION:-unknown}
  op_rel=$(op_release_dir "$op_ver")
  op_compose_sha=
  if [ -f "$op_rel/compose/docker-compose.yml" ]; then op_compose_sha=$(op_sha256 "$op_rel/compose/docker-compose.yml"); fi
  op_content=
  if [ -r "$op_rel/compose/.env" ]; then op_content=$(sed -n "s/^OUTPOST_CONTENT_VERSION='\(.*\)'$/\1/p" "$op_rel/compose/.env"); fi
  op_free=$(op_free_kb "$OP_STATE")
  op_engine_version=$(engine version --format '{{.Server.Version}}' 2>/dev/null | sed -n '1p' | cut -c1-50) || op_engine_version=
  op_compose_version=$(op_compose_version)
  op_file="$OP_STATE/queue/$(date -u +%Y%m%dT%H%M%SZ)-$2.json"
  {
    printf '{"version":"%s","status":"%s","healthChecks":' "$(op_json_string "$op_ver")" "$1"
    op_checks_json "$OP_STATE/checks"
    printf ',"idempotencyKey":"%s","reportedAt":"%s"' "$2" "$(op_now)"
    printf ',"edgeScriptsVersion":"%s"' "$(op_read "$OP_SCRIPTS/VERSION")"
    if [ -n "$op_compose_sha" ]; then printf ',"composeSha256":"%s"' "$op_compose_sha"; fi
    if [ -n "$op_content" ]; then printf ',"contentPackageVersion":"%s"' "$(op_json_string "$op_content")"; fi
    if [ -n "$op_free" ]; then printf ',"diskFreeBytes":%s' "$((op_free * 1024))"; fi
    if [ -n "$op_engine_version" ]; then printf ',"dockerVersion":"%s"' "$(op_json_string "$op_engine_version")"; fi
    if [ -n "$op_compose_version" ]; then printf ',"composeVersion":"%s"' "$(op_json_string "$op_compose_version")"; fi
    printf '}\n'
  } >"$op_file.tmp" && mv -f "$op_file.tmp" "$op_file"
  op_log "report queued: $(basename "$op_file")"
}

op_compose_version() {
  [ -n "$OP_COMPOSE" ] || return 0
  if [ "$OP_COMPOSE" = "docker compose" ]; then docker compose version --short 2>/dev/null; else docker-compose version --short 2>/dev/null; fi | sed -n '1p' | cut -c1-50
}

# op_post URL BODYFILE [TOKEN]: prints the HTTP status, the answer in $OP_STATE/answer.
op_post() {
  rm -f "$OP_STATE/answer"
  if command -v curl >/dev/null 2>&1; then
    if [ -n "${3:-}" ]; then
      # The token goes through a file, not the command line (which others on the server can read).
      printf 'header = "Authorization: Bearer %s"\n' "$3" >"$OP_STATE/curl-auth"
      curl -sS -m 30 -o "$OP_STATE/answer" -w '%{http_code}' -K "$OP_STATE/curl-auth" -H 'Content-Type: application/json' --data-binary "@$2" "$1" 2>>"$OP_LOG" || printf '000'
      rm -f "$OP_STATE/curl-auth"
    else
      curl -sS -m 30 -o "$OP_STATE/answer" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$2" "$1" 2>>"$OP_LOG" || printf '000'
    fi
  else
    # wget (GNU or busybox): -S writes the answer's status line(s) to standard error.
    # shellcheck disable=SC2046
    if [ -n "${3:-}" ]; then
      op_out=$(wget -S -T 30 $(op_wget_once) -O "$OP_STATE/answer" --header "Authorization: Bearer $3" --header 'Content-Type: application/json' --post-file "$2" "$1" 2>&1 >/dev/null) || :
    else
      op_out=$(wget -S -T 30 $(op_wget_once) -O "$OP_STATE/answer" --header 'Content-Type: application/json' --post-file "$2" "$1" 2>&1 >/dev/null) || :
    fi
    op_st=$(printf '%s\n' "$op_out" | sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' | sed -n '$p')
    printf '%s' "${op_st:-000}"
  fi
}

op_api_url() {
  op_v=$(op_current)
  op_rel=$(op_release_dir "${op_v:-${J_VERSION:-none}}")
  op_load_release_env "$op_rel"
  printf '%s' "${OUTPOST_API_URL:-}" | sed 's:/*$::'
}

# The device token: exchanged once from the bundle's enrolment token (docs/decisions.md).
op_enrol() {
  op_url=$1
  op_tok=$(op_read "$OP_STATE/enrolment-token")
  [ -n "$op_tok" ] || return 0
  printf '{"enrolmentToken":"%s"}\n' "$op_tok" >"$OP_STATE/enrol.json"
  op_code=$(op_post "$op_url/api/v1/enrol" "$OP_STATE/enrol.json")
  rm -f "$OP_STATE/enrol.json"
  case $op_code in
    200)
      op_dt=$(op_json_flat "$OP_STATE/answer" | awk -F '\t' '$1 == "deviceToken" { print $2 }')
      if [ -n "$op_dt" ]; then
        op_write "$OP_STATE/device-token" "$op_dt"
        rm -f "$OP_STATE/enrolment-token"
        say enrolled
      fi
      ;;
    401 | 400)
      # Used or expired: keep the device token we have (if any); do not try this one again.
      rm -f "$OP_STATE/enrolment-token"
      warn enrol_refused "$(op_json_flat "$OP_STATE/answer" 2>/dev/null | awk -F '\t' '$1 == "error.message" { print $2 }')"
      ;;
    *) op_log "enrolment not possible now (HTTP $op_code); will try again" ;;
  esac
  rm -f "$OP_STATE/answer"
}

# Sends the queued reports, oldest first. Returns 0 when the queue is empty afterwards.
op_send_queue() {
  op_url=$(op_api_url)
  op_n=$(find "$OP_STATE/queue" -name '*.json' -type f | wc -l | tr -d ' ')
  if [ "$op_n" = 0 ]; then return 0; fi
  if [ -z "$op_url" ]; then say report_no_url "$op_n"; return 1; fi
  op_enrol "$op_url"
  op_token=$(op_read "$OP_STATE/device-token")
  if [ -z "$op_token" ]; then say report_no_token "$op_n"; return 1; fi
  for op_q in "$OP_STATE"/queue/*.json; do
    [ -f "$op_q" ] || continue
    op_code=$(op_post "$op_url/api/v1/checkin" "$op_q" "$op_token")
    case $op_code in
      200)
        rm -f "$op_q"
        op_log "report sent: $(basename "$op_q")"
        ;;
      400 | 413)
        mkdir -p "$OP_STATE/queue/refused"
        mv -f "$op_q" "$OP_STATE/queue/refused/"
        warn report_refused "$(basename "$op_q")"
        ;;
      401) warn report_token_refused; return 1 ;;
      *) say report_offline "$op_code"; return 1 ;;
    esac
  done
  rm -f "$OP_STATE/answer"
  say report_sent
}

# ---------------------------------------------------------------------------------------------
# Nightly backup and a report every 30 minutes: a systemd timer when systemd runs, else cron.

op_schedule() {
  op_mode=${OUTPOST_SCHEDULER:-auto}
  [ "$op_mode" != none ] || return 0
  op_bin="$OP_STATE/scripts"
  op_env="OUTPOST_STATE_DIR=$OP_STATE"
  if [ "$op_mode" = auto ]; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then op_mode=systemd; else op_mode=cron; fi
  fi
  if [ "$op_mode" = systemd ]; then
    op_unit=${OUTPOST_SYSTEMD_DIR:-/etc/systemd/system}
    for op_job in backup report; do
      {
        printf '[Unit]\nDescription=Outpost %s\n\n[Service]\nType=oneshot\nEnvironment=%s\nExecStart=/bin/sh %s/%s\n' "$op_job" "$op_env" "$op_bin" "$op_job"
      } >"$op_unit/outpost-$op_job.service"
      if [ "$op_job" = backup ]; then op_cal='*-*-* 02:30:00'; else op_cal='*:0/30'; fi
      printf '[Unit]\nDescription=Outpost %s (timer)\n\n[Timer]\nOnCalendar=%s\nPersistent=true\nRandomizedDelaySec=300\n\n[Install]\nWantedBy=timers.target\n' "$op_job" "$op_cal" >"$op_unit/outpost-$op_job.timer"
    done
    if [ -z "${OUTPOST_SYSTEMD_DIR:-}" ]; then
      op_quiet systemctl daemon-reload || :
      op_quiet systemctl enable --now outpost-backup.timer outpost-report.timer || :
    fi
    say scheduled_systemd
  else
    op_cron=${OUTPOST_CRON_DIR:-/etc/cron.d}
    if [ ! -d "$op_cron" ]; then warn no_scheduler; return 0; fi
    {
      printf '# Outpost: nightly backup and a report every 30 minutes (written by scripts/install; rewritten each install)\n'
      printf 'SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
      printf '30 2 * * * root %s /bin/sh %s/backup --quiet\n' "$op_env" "$op_bin"
      printf '*/30 * * * * root %s /bin/sh %s/report --quiet\n' "$op_env" "$op_bin"
    } >"$op_cron/outpost.tmp" && chmod 644 "$op_cron/outpost.tmp" && mv -f "$op_cron/outpost.tmp" "$op_cron/outpost"
    say scheduled_cron "$op_cron/outpost"
  fi
}

# The engine and compose, or one clear sentence why not.
op_need_engine() {
  op_detect_engine || case $? in
    2) die engine_down ;;
    *) die engine_missing ;;
  esac
  op_detect_compose || die compose_missing
}

op_need_engine_quiet() {
  op_detect_engine && op_detect_compose
}
