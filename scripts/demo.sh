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

wait_pods() {  # wait until the controllers made $1 pods for app=web
  for _ in $(seq 1 60); do
    n=$(kubectl get pods -l app=web --no-headers 2>/dev/null | grep -vc Terminating || true)
    [ "$n" = "$1" ] && return 0
    sleep 1
  done
  echo "demo: expected $1 pods, found $n" >&2
  return 1
}

step "the controllers make a ReplicaSet and its pods (Pending: the cluster has no node yet; see examples/nodepool.yaml)"
wait_pods 3
kubectl get deployments,replicasets,pods,configmaps

step "kubectl scale deployment web --replicas=5"
kubectl scale deployment web --replicas=5
wait_pods 5
kubectl get pods -l app=web

step "kubectl delete -f examples/web.yaml (the garbage collector removes the ReplicaSet and pods)"
kubectl delete -f examples/web.yaml
wait_pods 0
kubectl get replicasets,pods

echo
echo "demo: every step worked"
