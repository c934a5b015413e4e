#!/usr/bin/env bash
# `make demo`: start a local Skiff control plane, drive it with kubectl, tear it down.
# Every step says what it does; the script exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export SKIFF_HOME="${SKIFF_HOME:-$PWD/.skiff/demo}"
PORT="${SKIFF_PORT:-8443}"

step() { printf '\n==> %s\n' "$*"; }
command -v kubectl >/dev/null || { echo "demo: kubectl is not installed (Debian: apt-get install kubernetes-client)" >&2; exit 1; }

cleanup() { step "skiff down"; skiff down || true; }
trap cleanup EXIT

step "skiff up --detach (moto as AWS, the Chalice app on http://127.0.0.1:$PORT)"
out=$(skiff up --detach --port "$PORT")
echo "$out"
eval "$(echo "$out" | tail -n 1)"

step "kubectl get namespaces"
kubectl get namespaces

step "kubectl apply -f examples/web.yaml (validated by the server's OpenAPI)"
kubectl apply -f examples/web.yaml

step "kubectl get deployments,configmaps"
kubectl get deployments,configmaps

step "kubectl scale deployment web --replicas=5"
kubectl scale deployment web --replicas=5
kubectl get deployment web -o jsonpath='{.spec.replicas}{"\n"}'

step "kubectl delete -f examples/web.yaml"
kubectl delete -f examples/web.yaml

echo
echo "demo: every step worked"
