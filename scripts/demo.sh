#!/usr/bin/env bash
# `make demo`: start a local Skiff cluster with two real nodes, build and push an image, deploy it with
# kubectl (the provisioner adds a third node), reach it over HTTP, roll out a new version, read the sidecar's
# logs, tear everything down. Every step says what it does; the script exits non-zero if any step fails.
#
# Environment: SKIFF_HOME (default .skiff/demo), SKIFF_PORT (API, 8443), SKIFF_AWS_PORT (moto, 5100),
# SKIFF_REGISTRY_PORT (the local ECR, 5101), SKIFF_NODES (2). Needs docker, kubectl and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
export SKIFF_HOME="${SKIFF_HOME:-$PWD/.skiff/demo}"
NODES="${SKIFF_NODES:-2}"
REPO=skiff-demo/web
HOST_PORT=8080 # examples/web.yaml's hostPort
START=$SECONDS

step() { printf '\n==> %s\n' "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }

need() { command -v "$1" >/dev/null || fail "$1 is not installed; $2"; }
need docker "the nodes run pods on the local Docker engine (Debian: apt-get install docker.io)"
need kubectl "the demo drives the cluster with it (Debian: apt-get install kubernetes-client)"
need curl "the demo reaches the app over HTTP with it (Debian: apt-get install curl)"
need skiff "run the demo with \`make demo\`, which installs skiff into .venv"
docker info >/dev/null 2>&1 || fail "Docker is installed but its engine does not answer (is dockerd running?)"

# Every node this cluster ever had, so the teardown can check that none left a container behind.
SEEN_NODES=""
remember_nodes() {
  local n
  for n in $(kubectl get nodes -o jsonpath='{.items[*].metadata.name}' 2>/dev/null || true); do
    case " $SEEN_NODES " in *" $n "*) ;; *) SEEN_NODES="$SEEN_NODES $n" ;; esac
  done
}

cleanup() {
  local rc=$? leftover n
  trap - EXIT
  if [ -n "${KUBECONFIG:-}" ]; then
    remember_nodes
    if [ "$rc" != 0 ]; then  # show what the cluster looked like when the step failed
      echo "demo: a step failed; the cluster looked like this:" >&2
      kubectl get nodeclaims,nodes,deployments,pods -o wide >&2 || true
      kubectl get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 15 >&2 || true
    fi
  fi
  step "skiff down (stops the API, controllers, node agents, registry and moto; removes the containers)"
  skiff down || rc=1
  leftover=""
  for n in $SEEN_NODES; do
    leftover="$leftover$(docker ps -aq --filter "label=io.skiff.node=$n")"
  done
  if [ -n "$leftover" ]; then
    echo "demo: containers of this cluster's nodes ($SEEN_NODES ) are still there:" >&2
    for n in $SEEN_NODES; do docker ps -a --filter "label=io.skiff.node=$n" >&2; done
    rc=1
  else
    echo "no container of this cluster's nodes ($SEEN_NODES ) is left"
  fi
  if [ "$rc" = 0 ]; then
    printf '\ndemo: every step worked (%d s)\n' $((SECONDS - START))
  else
    printf '\ndemo: FAILED (exit %d after %d s); logs are in %s\n' "$rc" $((SECONDS - START)) "$SKIFF_HOME" >&2
  fi
  exit "$rc"
}

# until SECONDS WHAT COMMAND...: retry COMMAND every second until it succeeds, or fail after SECONDS.
until_ok() {
  local timeout=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what did not happen within $timeout s"
    sleep 1
  done
}

build() {  # build VERSION: the demo image skiff-demo/web:vVERSION from examples/demo-app
  local out
  echo "docker build --build-arg VERSION=$1 -t $REPO:v$1 examples/demo-app"
  out=$(docker build -q --build-arg "VERSION=$1" -t "$REPO:v$1" examples/demo-app 2>&1) || { echo "$out" >&2; fail "docker build failed"; }
  docker image inspect -f "built $REPO:v$1 ({{.Id}})" "$REPO:v$1"
}

push() {  # push VERSION: into the cluster's ECR repository; sets IMAGE to the reference pods use
  echo "skiff image push $REPO:v$1 $REPO:v$1"
  IMAGE=$(skiff image push "$REPO:v$1" "$REPO:v$1")
  echo "pushed: $IMAGE"
}

web_pod_hosts() {  # the node IPs (hostIP) of the web pods that are not being deleted, one a line
  kubectl get pods -l app=web -o jsonpath='{range .items[*]}{.status.hostIP} {.metadata.deletionTimestamp}{"\n"}{end}' \
    | awk 'NF == 1 { print $1 }'
}

ready_nodes() { kubectl get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l; }
at_least_ready_nodes() { [ "$(ready_nodes)" -ge "$1" ]; }

page_says() {  # page_says IP TEXT: http://IP:8080/ answers with a page containing TEXT
  curl -fsS --max-time 5 "http://$1:$HOST_PORT/" 2>/dev/null | grep -q "$2"
}

check_version() {  # check_version N: every web pod, reached on its node's IP and hostPort, serves version N
  local hosts ip node_ips
  hosts=$(web_pod_hosts)
  [ "$(echo "$hosts" | grep -c .)" = 3 ] || fail "expected 3 running web pods, found: $(echo "$hosts" | tr '\n' ' ')"
  node_ips=$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')
  for ip in $hosts; do
    echo "$node_ips" | grep -qx "$ip" || fail "$ip is no node's InternalIP (nodes: $(echo "$node_ips" | tr '\n' ' '))"
    echo "curl http://$ip:$HOST_PORT/"
    until_ok 30 "version $1 on $ip:$HOST_PORT" page_says "$ip" "version $1"
    curl -fsS --max-time 5 "http://$ip:$HOST_PORT/"
  done
}

if skiff status >/dev/null 2>&1; then
  step "a demo cluster from an earlier run still runs from $SKIFF_HOME: skiff down"
  skiff down
fi

step "build the demo image (examples/demo-app, on the busybox-static base; no registry needed)"
python -m skiff.demoimage
build 1

trap cleanup EXIT
step "skiff up --detach --nodes $NODES (moto as AWS, the API, controllers, scheduler, provisioner, local ECR, node agents)"
up_log=$(mktemp)
if ! skiff up --detach --nodes "$NODES" | tee "$up_log"; then
  rm -f "$up_log"
  fail "skiff up failed (above). If a port is taken, make demo takes SKIFF_PORT, SKIFF_AWS_PORT and SKIFF_REGISTRY_PORT"
fi
line=$(tail -n 1 "$up_log")
rm -f "$up_log"
case "$line" in "export KUBECONFIG="*) eval "$line" ;; *) fail "skiff up did not print the KUBECONFIG export" ;; esac
echo "KUBECONFIG=$KUBECONFIG"

step "skiff status; kubectl get nodes -o wide (each node is an EC2 instance in moto with its own loopback IP)"
skiff status
kubectl get nodes -o wide
remember_nodes
[ "$(ready_nodes)" -ge "$NODES" ] || fail "expected $NODES Ready nodes"

step "skiff image push: version 1 into the cluster's ECR repository"
push 1
[ "$IMAGE" = "123456789012.dkr.ecr.us-east-1.amazonaws.com/$REPO:v1" ] \
  || fail "examples/web.yaml names 123456789012.dkr.ecr.us-east-1.amazonaws.com/$REPO:v1, but the push gave $IMAGE"

step "kubectl apply -f examples/nodepool.yaml (lets the provisioner launch nodes for pods that fit nowhere)"
kubectl apply -f examples/nodepool.yaml

step "kubectl apply -f examples/web.yaml (3 replicas with hostPort $HOST_PORT on $NODES nodes: one pod fits nowhere)"
kubectl apply -f examples/web.yaml

step "the provisioner launches a node for the pending pod (kubectl get nodeclaims,nodes -o wide)"
until_ok 150 "a third Ready node" at_least_ready_nodes 3
kubectl get nodeclaims,nodes -o wide
remember_nodes

step "kubectl rollout status deployment/web"
kubectl rollout status deployment/web --timeout=180s
kubectl get deployments,replicasets,pods -o wide

step "curl each web pod through hostPort $HOST_PORT on its node's InternalIP: version 1"
check_version 1
ip=$(web_pod_hosts | head -n 1)
echo "curl http://$ip:$HOST_PORT/greeting.txt (from the ConfigMap web-config)"
greeting=$(curl -fsS --max-time 5 "http://$ip:$HOST_PORT/greeting.txt") || fail "no greeting.txt on $ip:$HOST_PORT"
echo "$greeting"
[ "$greeting" = "hello from skiff" ] || fail "greeting.txt does not carry the ConfigMap's greeting"

step "build and push version 2; kubectl set image deployment/web web=... log-shipper=..."
build 2
push 2
kubectl set image deployment/web "web=$IMAGE" "log-shipper=$IMAGE"

step "kubectl rollout status deployment/web (one pod at a time: maxSurge 0, maxUnavailable 1)"
kubectl rollout status deployment/web --timeout=180s
kubectl rollout history deployment/web
three_web_pods() { [ "$(kubectl get pods -l app=web --no-headers 2>/dev/null | wc -l)" = 3 ]; }
until_ok 60 "the old pods' removal" three_web_pods
kubectl get nodes,pods -o wide

step "curl each web pod again: version 2"
check_version 2

step "kubectl logs deploy/web -c log-shipper (the sidecar follows the access log the app writes)"
shipped() { kubectl logs deploy/web -c log-shipper 2>/dev/null | grep -q 'url:/$'; }
until_ok 60 "the sidecar's log showing the requests" shipped
# Leave out the readiness probes' requests (a line per request and one per response, by client address).
kubectl logs deploy/web -c log-shipper | awk '/url:\/healthz/ { probe[$1] = 1; next } !probe[$1]' | tail -n 6

step "kubectl apply -f examples/one-off-pod.yaml (runs to completion, configured from a ConfigMap); kubectl logs report"
kubectl apply -f examples/one-off-pod.yaml
kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/report --timeout=90s
kubectl get pod report -o wide
report_logged() { kubectl logs report 2>/dev/null | grep -q "item 3 done"; }
until_ok 60 "the report's output in kubectl logs" report_logged
kubectl logs report

step "kubectl delete -f examples/one-off-pod.yaml -f examples/web.yaml -f examples/nodepool.yaml"
remember_nodes
kubectl delete -f examples/one-off-pod.yaml -f examples/web.yaml -f examples/nodepool.yaml
no_web_pods() { [ -z "$(kubectl get pods -l app=web -o name 2>/dev/null)" ]; }
until_ok 60 "the web pods' removal" no_web_pods
kubectl get deployments,pods
