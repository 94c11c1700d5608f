#!/usr/bin/env bash
# `npm test`: everything a release needs to be trusted. Prerequisites; the format check, the lint and
# the layer rules (eslint.config.js); the type checks of the three packages; the web build; then the
# whole vitest suite (extra arguments go to vitest). Stops at the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The S3 test server (s3rver) encrypts list continuation tokens with DES, which OpenSSL 3 keeps
# in its legacy provider; without it paginated ListObjectsV2 answers 500 (as for `npm start`).
case " ${NODE_OPTIONS:-} " in
  *" --openssl-legacy-provider "*) ;;
  *) export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider" ;;
esac

step() {
  local name=$1; shift
  local started=$SECONDS
  printf '\n==> %s\n' "$name"
  if ! "$@"; then
    printf '\n==> FAILED: %s (after %ss)\n' "$name" $((SECONDS - started)) >&2
    exit 1
  fi
  printf '==> done: %s (%ss)\n' "$name" $((SECONDS - started))
}

step "Checking prerequisites" bash scripts/ensure-prereqs.sh
step "Checking the formatting (Prettier)" npx prettier --check --log-level warn .
step "Linting, with the layer rules (ESLint)" npx eslint --max-warnings 0 .
step "Type-checking the API" npm run check -w api
step "Type-checking the bundler" npm run check -w bundler
step "Type-checking the web (svelte-check)" npm run check -w web
step "Building the web dashboard" npm run build -w web
step "Running the test suite" npx vitest run "$@"
printf '\nAll checks passed in %ss.\n' "$SECONDS"
