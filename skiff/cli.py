"""The `skiff` command: up, down, status, token, image push."""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import time

from skiff import local


def _up(args: argparse.Namespace, layout: local.Layout) -> int:
    if local.read_state(layout) is not None:
        print(f"a Skiff cluster already runs from {layout.home}; `skiff down` stops it", file=sys.stderr)
        return 1
    if not args.detach:
        print(f"starting Skiff (state in {layout.home}) ...", flush=True)
        try:
            local.serve(layout, host=args.host, port=args.port, moto_port=args.aws_port,
                        aws_endpoint=args.aws_endpoint, nodes=_node_options(args))
        except local.StartError as e:
            print(f"skiff up: {e}", file=sys.stderr)
            return 1
        return 0
    layout.home.mkdir(parents=True, exist_ok=True)
    nodes = _node_options(args)
    ports = [(args.port, "--port")] + ([] if args.aws_endpoint else [(args.aws_port, "--aws-port")])
    if nodes.runtime == "docker":
        ports.append((nodes.registry_port, "--registry-port"))
    for p, flag in ports:
        if not local.port_free(args.host, p):
            print(f"skiff up: port {p} on {args.host} is already in use; stop what uses it or choose another "
                  f"with {flag}", file=sys.stderr)
            return 1
    print(f"starting Skiff in the background (log: {layout.log}) ...", flush=True)
    start = layout.log.stat().st_size if layout.log.exists() else 0
    with open(layout.log, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "skiff.cli", "--home", str(layout.home), "up",
                                 "--host", args.host, "--port", str(args.port), "--aws-port", str(args.aws_port),
                                 "--nodes", str(nodes.count), "--node-type", nodes.instance_type,
                                 "--node-runtime", nodes.runtime, "--registry-port", str(nodes.registry_port)]
                                + (["--aws-endpoint", args.aws_endpoint] if args.aws_endpoint else []),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + args.timeout
    shown = start
    while time.monotonic() < deadline:
        shown = _show_progress(layout, shown)
        if proc.poll() is not None:
            print(f"skiff up: the cluster process exited with code {proc.returncode}; see {layout.log}:\n"
                  + layout.log.read_text()[-2000:], file=sys.stderr)
            return 1
        state = local.read_state(layout)
        if state and state.get("error"):
            print(f"skiff up: {state['error']}; the cluster keeps running (`skiff down` stops it)", file=sys.stderr)
            return 1
        if state and state.get("ready") and local.wait_http(
                f"{state['url']}/healthz", 0.5, ssl.create_default_context(cafile=str(state["ca_cert"]))):
            _show_progress(layout, shown)
            print(f"Skiff API: {state['url']}")
            print(f"export KUBECONFIG={layout.kubeconfig}")
            return 0
        time.sleep(0.2)
    print(f"skiff up: the cluster was not ready within {args.timeout:.0f} s; see {layout.log}", file=sys.stderr)
    local.stop(layout)
    return 1


def _show_progress(layout: local.Layout, offset: int) -> int:
    """Echo the server's progress lines written to the log since `offset`; the new offset."""
    try:
        with open(layout.log, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return offset
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode("utf-8", "replace").splitlines():
        if line.startswith("skiff: "):
            print(line, flush=True)
    return offset + end


def _node_options(args: argparse.Namespace) -> local.NodeOptions:
    return local.NodeOptions(count=args.nodes, instance_type=args.node_type, runtime=args.node_runtime,
                             registry_port=args.registry_port)


def _down(args: argparse.Namespace, layout: local.Layout) -> int:
    if local.stop(layout):
        print("Skiff stopped")
    else:
        print("no Skiff cluster runs from", layout.home)
    return 0


def _status(args: argparse.Namespace, layout: local.Layout) -> int:
    state = local.read_state(layout)
    if state is None:
        print("not running")
        return 1
    for k in ("url", "aws_endpoint", "kubeconfig", "pid", "node_runtime", "registry", "ecr_registry"):
        if state.get(k) is not None:
            print(f"{k}: {state[k]}")
    print(f"ready: {'yes' if state.get('ready') else 'not yet'}")
    try:
        fleet = json.loads((layout.home / "fleet.json").read_text())
    except (OSError, ValueError):
        fleet = {}
    for node in fleet.get("nodes") or []:
        alive = "running" if node.get("alive") else "stopped"
        extra = f" pid {node['pid']} ip {node.get('internalIP')}" if node.get("pid") else ""
        print(f"node {node.get('name')} ({node.get('instanceID')}): agent {alive}{extra}")
    return 0


def _token(args: argparse.Namespace, layout: local.Layout) -> int:
    state = local.read_state(layout)
    if state is not None and "AWS_ENDPOINT_URL" not in os.environ:
        os.environ.update(local.aws_env(str(state["aws_endpoint"])))
    from chalicelib.api.auth import issue_token

    try:
        print(issue_token(args.role, node=args.node, description=args.description))
    except ValueError as e:
        print(f"skiff token create: {e}", file=sys.stderr)
        return 2
    return 0


def _image_push(args: argparse.Namespace, layout: local.Layout) -> int:
    state = local.read_state(layout)
    if state is None:
        print("skiff image push: no Skiff cluster runs from", layout.home, file=sys.stderr)
        return 1
    if not state.get("registry"):
        print("skiff image push: this cluster has no registry (it was started with --node-runtime hollow)",
              file=sys.stderr)
        return 1
    os.environ.update(local.aws_env(str(state["aws_endpoint"])))
    from skiff.images import PushError, push_image

    try:
        ref = push_image(args.image, args.target, registry=str(state["registry"]),
                         ecr_registry=str(state["ecr_registry"]))
    except PushError as e:
        print(f"skiff image push: {e}", file=sys.stderr)
        return 1
    print(ref)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skiff", description="Run and manage a Skiff cluster.")
    parser.add_argument("--home", default=None, help="state directory (default: $SKIFF_HOME or ./.skiff)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a local cluster (moto as AWS, the API on loopback)")
    up.add_argument("--detach", action="store_true", help="run in the background; print the KUBECONFIG export")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=int(os.environ.get("SKIFF_PORT", "8443")))
    up.add_argument("--aws-port", type=int, default=int(os.environ.get("SKIFF_AWS_PORT", "5100")))
    up.add_argument("--aws-endpoint", default=None,
                    help="use this AWS endpoint (e.g. LocalStack, http://localhost:4566) instead of starting moto")
    up.add_argument("--nodes", type=int, default=int(os.environ.get("SKIFF_NODES", "2")),
                    help="worker nodes to start with (each an EC2 instance in moto; default 2)")
    up.add_argument("--node-type", default=os.environ.get("SKIFF_NODE_TYPE", "t3.large"),
                    help="EC2 instance type of those nodes (default t3.large)")
    up.add_argument("--node-runtime", choices=["docker", "hollow"], default=os.environ.get("SKIFF_NODE_RUNTIME",
                                                                                          "docker"),
                    help="docker: real node agents running containers on local Docker (default); hollow: "
                         "simulated nodes that run nothing (no Docker needed)")
    up.add_argument("--registry-port", type=int, default=int(os.environ.get("SKIFF_REGISTRY_PORT", "5101")),
                    help="port of the local registry standing in for ECR (default 5101)")
    up.add_argument("--timeout", type=float, default=120.0, help="with --detach: how long to wait for ready")
    sub.add_parser("down", help="stop the local cluster")
    sub.add_parser("status", help="show what runs")
    token = sub.add_parser("token", help="manage bearer tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token and print it (once)")
    create.add_argument("--role", choices=["admin", "node", "bootstrap"], required=True)
    create.add_argument("--node", help="the node a node token belongs to")
    create.add_argument("--description", default="")
    image = sub.add_parser("image", help="manage images in the cluster's registry (ECR; locally its stand-in)")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    push = image_sub.add_parser("push", help="push a local Docker image to the cluster's ECR repository")
    push.add_argument("image", help="the local image, e.g. myapp:dev")
    push.add_argument("target", help="repository:tag in the cluster's registry, e.g. myapp:v1")
    args = parser.parse_args(argv)
    if args.command == "up" and args.nodes < 0:
        parser.error("--nodes must be 0 or more")
    layout = local.Layout(local.default_home() if args.home is None else
                          local.Path(args.home).resolve())
    handlers = {"up": _up, "down": _down, "status": _status, "token": _token, "image": _image_push}
    return handlers[args.command](args, layout)


if __name__ == "__main__":
    sys.exit(main())
