#!/usr/bin/env bash
# Installs (or finds) what the test suite needs (or, with --nats-only, what `make run` needs) on a fresh Debian/Ubuntu machine:
#   nats-server (Debian package), chromium (case page browser test), python3 + venv (Twilio SDK check),
#   curl, and cargo-nextest when it is missing (falls back to `cargo test` if it cannot be installed).
# Elsewhere it fails with a clear message naming what is missing.
set -euo pipefail

need_apt=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
if [ "${1:-}" = "--nats-only" ]; then
  :
else
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || [ -n "${CHROMIUM_BIN:-}" ] || need_apt+=(chromium)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "Installing test dependencies: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "Missing test dependencies: ${need_apt[*]}. Install them with your package manager (this script only knows apt)." >&2
    exit 1
  fi
fi
echo "Dependencies present: nats-server $(nats-server --version 2>/dev/null || /usr/sbin/nats-server --version)"
