#!/bin/sh
# Receipt codes and receipt files for Outpost installs — the site-side half of the scheme in
# docs/receipt-codes.md (the server half is api/src/services/receipts/). Both must agree byte
# for byte; docs/receipt-code-vectors.json pins them and the API tests run this script under
# dash and busybox sh.
#
# Run it:
#   sh receipt-code.sh encode    KEYHEX SITEID VERSION OUTCOME EPOCHSECONDS    -> the code
#   sh receipt-code.sh iso       EPOCHSECONDS                                  -> 2025-03-04T10:22:07Z
#   sh receipt-code.sh file-hmac KEYHEX SITEID VERSION OUTCOME EPOCHSECONDS DETAILSFILE -> hex HMAC
#   sh receipt-code.sh file      KEYHEX SITEID VERSION OUTCOME EPOCHSECONDS DETAILSFILE -> receipt JSON
# or source it (with RECEIPT_CODE_LIB=1 if the caller is itself named receipt-code.sh) and call
# receipt_code_encode, receipt_code_iso, receipt_code_file_hmac, receipt_code_file.
#
# OUTCOME is installed, failed or rolled_back. DETAILSFILE holds a JSON object (health checks
# and so on), written by the caller; it goes into the receipt as is, minus surrounding blanks.
# Needs only openssl (1.1.1 or later), sed, tr, wc and cat. Numbers stay below 2^46, so 64-bit
# shell arithmetic is never near its limit.
#
# The public functions run in a subshell ( ... ) so that LC_ALL=C (byte semantics for the
# version text) and their variables do not leak into a script that sources this file.

RC_ALPHABET=23456789ABCDEFGHJKMNPQRSTUVWXYZ
RC_EPOCH=1704067200        # 2024-01-01T00:00:00Z; the code counts minutes from here
RC_MAX_MINUTE=16777215     # 2^24 - 1
RC_MAC40=1099511627776     # 2^40

rc_fail() {
  printf 'receipt-code: %s\n' "$1" >&2
  return 1
}

rc_check_key() {
  rc_key=$(printf '%s' "$1" | tr 'A-F' 'a-f')
  case $rc_key in *[!0-9a-f]*) rc_fail "the receipt key must be 64 hex digits" || return 1 ;; esac
  [ "${#rc_key}" -eq 64 ] || rc_fail "the receipt key must be 64 hex digits" || return 1
}

rc_check_site() {
  rc_site=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')
  rc_h4='[0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
  # shellcheck disable=SC2254 # the pattern is meant to be a pattern
  case $rc_site in
    $rc_h4$rc_h4-$rc_h4-$rc_h4-$rc_h4-$rc_h4$rc_h4$rc_h4) ;;
    *) rc_fail "the site id must be a UUID: $1" || return 1 ;;
  esac
}

rc_check_version() {
  rc_version=$1
  case $rc_version in
    '') rc_fail "the release version is empty" || return 1 ;;
    *[[:cntrl:]]*) rc_fail "the release version has a control character" || return 1 ;;
  esac
  rc_len=$(printf '%s' "$rc_version" | wc -c | tr -d ' ')
  [ "$rc_len" -le 128 ] || rc_fail "the release version is longer than 128 bytes" || return 1
}

rc_check_outcome() {
  rc_outcome=$1
  case $rc_outcome in
    installed) rc_outcome_value=0 ;;
    failed) rc_outcome_value=1 ;;
    rolled_back) rc_outcome_value=2 ;;
    *) rc_fail "the outcome must be installed, failed or rolled_back: $1" || return 1 ;;
  esac
}

rc_check_seconds() {
  # Digits only, no leading zero (the shell would read it as octal), at most 11 digits.
  case $1 in
    '' | *[!0-9]* | 0?* | ????????????*) rc_fail "the time must be seconds since 1970: $1" || return 1 ;;
  esac
  rc_seconds=$1
  if [ "$rc_seconds" -lt "$RC_EPOCH" ]; then
    rc_fail "the time is before 2024-01-01, so the clock is probably wrong" || return 1
  fi
  rc_minute=$(((rc_seconds - RC_EPOCH) / 60))
  if [ "$rc_minute" -gt "$RC_MAX_MINUTE" ]; then
    rc_fail "the time is after 2055-11-24T20:15:59Z, which a receipt code cannot carry" || return 1
  fi
}

# Reads stdin; prints the 64 hex digits of its SHA-256, or of HMAC-SHA256 with hex key $1.
rc_digest() {
  if [ $# -eq 0 ]; then
    rc_out=$(openssl dgst -sha256) || rc_fail "openssl dgst failed" || return 1
  else
    rc_out=$(openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1") || rc_fail "openssl dgst -mac HMAC failed" || return 1
  fi
  # "SHA2-256(stdin)= …" (OpenSSL 3) or "(stdin)= …" (1.1.1)
  rc_out=${rc_out##*= }
  case $rc_out in *[!0-9a-f]*) rc_fail "unexpected openssl output" || return 1 ;; esac
  [ "${#rc_out}" -eq 64 ] || rc_fail "unexpected openssl output" || return 1
  printf '%s\n' "$rc_out"
}

# Sets rc_ch to the alphabet symbol of value $1 (0-30).
rc_symbol() {
  rc_rest=$RC_ALPHABET
  rc_i=$1
  while [ "$rc_i" -gt 0 ]; do
    rc_rest=${rc_rest#?}
    rc_i=$((rc_i - 1))
  done
  rc_ch=${rc_rest%"${rc_rest#?}"}
}

receipt_code_encode() (
  LC_ALL=C
  export LC_ALL
  [ $# -eq 5 ] || rc_fail "usage: encode KEYHEX SITEID VERSION OUTCOME EPOCHSECONDS" || exit 1
  rc_check_key "$1" || exit 1
  rc_check_site "$2" || exit 1
  rc_check_version "$3" || exit 1
  rc_check_outcome "$4" || exit 1
  rc_check_seconds "$5" || exit 1

  rc_mac=$(printf 'outpost-receipt-code/1\nsite:%s\nversion:%s\noutcome:%s\nminute:%s\n' \
    "$rc_site" "$rc_version" "$rc_outcome_value" "$rc_minute" | rc_digest "$rc_key") || exit 1
  rc_sha=$(printf '%s' "$rc_version" | rc_digest) || exit 1
  rc_hint=$((0x${rc_sha%"${rc_sha#??}"} >> 3))

  # The 74-bit value as two limbs: hi = format 2 | outcome 3 | minute 24 | hint 5 (34 bits),
  # lo = first 40 bits of the MAC. Long division by 31 keeps every intermediate below 31·2^40.
  rc_hi=$(((((1 * 8 + rc_outcome_value) * 16777216 + rc_minute) * 32) + rc_hint))
  rc_lo=$((0x${rc_mac%"${rc_mac#??????????}"}))
  rc_digits=''
  rc_n=0
  while [ "$rc_n" -lt 15 ]; do
    rc_r=$((rc_hi % 31))
    rc_hi=$((rc_hi / 31))
    rc_t=$((rc_r * RC_MAC40 + rc_lo))
    rc_lo=$((rc_t / 31))
    rc_digits="$((rc_t % 31)) $rc_digits"
    rc_n=$((rc_n + 1))
  done
  if [ "$rc_hi" -ne 0 ] || [ "$rc_lo" -ne 0 ]; then
    rc_fail "internal error: the value does not fit 15 symbols" || exit 1
  fi

  # Check symbol: sum of position x value over positions 1-16 must be 0 mod 31; the check
  # sits at position 16 and 16^-1 = 2 (mod 31), so c = -2 x (sum over 1-15) mod 31.
  rc_code=''
  rc_sum=0
  rc_n=0
  IFS=' '
  for rc_d in $rc_digits; do
    rc_n=$((rc_n + 1))
    rc_sum=$((rc_sum + rc_n * rc_d))
    rc_symbol "$rc_d"
    rc_code=$rc_code$rc_ch
    case $rc_n in 4 | 8 | 12) rc_code=$rc_code- ;; esac
  done
  rc_symbol $(((31 - (2 * rc_sum) % 31) % 31))
  printf '%s\n' "$rc_code$rc_ch"
)

receipt_code_iso() (
  [ $# -eq 1 ] || rc_fail "usage: iso EPOCHSECONDS" || exit 1
  case $1 in '' | *[!0-9]* | 0?* | ????????????*) rc_fail "the time must be seconds since 1970: $1" || exit 1 ;; esac
  # Civil date from days since 1970 (H. Hinnant's days_from_civil, inverted); no `date -d`.
  rc_z=$(($1 / 86400 + 719468))
  rc_s=$(($1 % 86400))
  rc_era=$((rc_z / 146097))
  rc_doe=$((rc_z - rc_era * 146097))
  rc_yoe=$(((rc_doe - rc_doe / 1460 + rc_doe / 36524 - rc_doe / 146096) / 365))
  rc_doy=$((rc_doe - (365 * rc_yoe + rc_yoe / 4 - rc_yoe / 100)))
  rc_mp=$(((5 * rc_doy + 2) / 153))
  rc_day=$((rc_doy - (153 * rc_mp + 2) / 5 + 1))
  if [ "$rc_mp" -lt 10 ]; then rc_month=$((rc_mp + 3)); else rc_month=$((rc_mp - 9)); fi
  rc_year=$((rc_yoe + rc_era * 400))
  if [ "$rc_month" -le 2 ]; then rc_year=$((rc_year + 1)); fi
  printf '%04d-%02d-%02dT%02d:%02d:%02dZ\n' "$rc_year" "$rc_month" "$rc_day" \
    $((rc_s / 3600)) $((rc_s % 3600 / 60)) $((rc_s % 60))
)

# Sets rc_details to the file's text without surrounding blanks, rc_details_sha to its SHA-256.
rc_read_details() {
  [ -r "$1" ] || rc_fail "cannot read the details file: $1" || return 1
  rc_details=$(cat -- "$1") || return 1
  while :; do
    case $rc_details in [[:space:]]*) rc_details=${rc_details#?} ;; *) break ;; esac
  done
  while :; do
    case $rc_details in *[[:space:]]) rc_details=${rc_details%?} ;; *) break ;; esac
  done
  case $rc_details in
    '{'*'}') ;;
    *) rc_fail "the details file must hold a JSON object" || return 1 ;;
  esac
  rc_details_sha=$(printf '%s' "$rc_details" | rc_digest) || return 1
}

# Sets rc_code, rc_at, rc_details, rc_hmac (and everything the checks set).
rc_file_fields() {
  [ $# -eq 6 ] || rc_fail "usage: file-hmac|file KEYHEX SITEID VERSION OUTCOME EPOCHSECONDS DETAILSFILE" || return 1
  rc_code=$(receipt_code_encode "$1" "$2" "$3" "$4" "$5") || return 1
  rc_at=$(receipt_code_iso "$5") || return 1
  rc_check_key "$1" || return 1
  rc_check_site "$2" || return 1
  rc_check_version "$3" || return 1
  rc_check_outcome "$4" || return 1
  rc_read_details "$6" || return 1
  rc_hmac=$(printf 'outpost-receipt/1\nsite:%s\nversion:%s\noutcome:%s\nat:%s\ncode:%s\ndetails-sha256:%s\n' \
    "$rc_site" "$rc_version" "$rc_outcome" "$rc_at" "$rc_code" "$rc_details_sha" | rc_digest "$rc_key") || return 1
}

receipt_code_file_hmac() (
  LC_ALL=C
  export LC_ALL
  rc_file_fields "$@" || exit 1
  printf '%s\n' "$rc_hmac"
)

receipt_code_file() (
  LC_ALL=C
  export LC_ALL
  rc_file_fields "$@" || exit 1
  # Versions have no control characters, so escaping " and \ makes a valid JSON string.
  rc_json_version=$(printf '%s' "$rc_version" | sed 's/[\\"]/\\&/g') || exit 1
  printf '{\n  "format": "outpost-receipt/1",\n  "siteId": "%s",\n  "version": "%s",\n  "outcome": "%s",\n  "at": "%s",\n  "details": %s,\n  "code": "%s",\n  "hmac": "%s"\n}\n' \
    "$rc_site" "$rc_json_version" "$rc_outcome" "$rc_at" "$rc_details" "$rc_code" "$rc_hmac"
)

receipt_code_main() {
  [ $# -ge 1 ] || rc_fail "usage: receipt-code.sh encode|iso|file-hmac|file ARGS... (see the top of this file)" || return 1
  rc_cmd=$1
  shift
  case $rc_cmd in
    encode) receipt_code_encode "$@" ;;
    iso) receipt_code_iso "$@" ;;
    file-hmac) receipt_code_file_hmac "$@" ;;
    file) receipt_code_file "$@" ;;
    *) rc_fail "unknown command: $rc_cmd (encode, iso, file-hmac or file)" ;;
  esac
}

if [ "${RECEIPT_CODE_LIB:-}" != 1 ]; then
  case ${0##*/} in
    receipt-code.sh)
      set -eu
      receipt_code_main "$@"
      ;;
  esac
fi
