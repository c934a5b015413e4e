"""The `skiff` command: up, down, status, token."""

from __future__ import annotations

import argparse
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
                        aws_endpoint=args.aws_endpoint)
        except local.StartError as e:
            print(f"skiff up: {e}", file=sys.stderr)
            return 1
        return 0
    layout.home.mkdir(parents=True, exist_ok=True)
    for p in (args.port,) if args.aws_endpoint else (args.port, args.aws_port):
        if not local.port_free(args.host, p):
            print(f"skiff up: port {p} on {args.host} is already in use; stop what uses it or choose another "
                  "with --port/--aws-port", file=sys.stderr)
            return 1
    print(f"starting Skiff in the background (log: {layout.log}) ...", flush=True)
    with open(layout.log, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "skiff.cli", "--home", str(layout.home), "up",
                                 "--host", args.host, "--port", str(args.port), "--aws-port", str(args.aws_port)]
                                + (["--aws-endpoint", args.aws_endpoint] if args.aws_endpoint else []),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"skiff up: the cluster process exited with code {proc.returncode}; see {layout.log}:\n"
                  + layout.log.read_text()[-2000:], file=sys.stderr)
            return 1
        state = local.read_state(layout)
        if state and local.wait_http(f"{state['url']}/healthz", 0.5,
                                     ssl.create_default_context(cafile=str(state["ca_cert"]))):
            print(f"Skiff API: {state['url']}")
            print(f"export KUBECONFIG={layout.kubeconfig}")
            return 0
        time.sleep(0.2)
    print(f"skiff up: the cluster did not answer within 60 s; see {layout.log}", file=sys.stderr)
    proc.terminate()
    return 1


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
    for k in ("url", "aws_endpoint", "kubeconfig", "pid"):
        print(f"{k}: {state[k]}")
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
    sub.add_parser("down", help="stop the local cluster")
    sub.add_parser("status", help="show what runs")
    token = sub.add_parser("token", help="manage bearer tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token and print it (once)")
    create.add_argument("--role", choices=["admin", "node", "bootstrap"], required=True)
    create.add_argument("--node", help="the node a node token belongs to")
    create.add_argument("--description", default="")
    args = parser.parse_args(argv)
    layout = local.Layout(local.default_home() if args.home is None else
                          local.Path(args.home).resolve())
    handlers = {"up": _up, "down": _down, "status": _status, "token": _token}
    return handlers[args.command](args, layout)


if __name__ == "__main__":
    sys.exit(main())
