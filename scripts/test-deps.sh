#!/usr/bin/env bash
# Installs the system packages the tests use when they are missing (run by `npm test` through
# `pretest`): PostgreSQL's server binaries for the PostgreSQL store tests, and Chromium for the
# dashboard's browser tests (playwright-core downloads no browser).
# Needs root for apt-get; otherwise it says what to install and fails.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || [ -n "${OPENBATCH_PG_BIN:-}" ] || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "The tests need: ${missing[*]}. Install with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing for the tests: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
