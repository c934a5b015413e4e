"""The local cluster's processes: moto server as AWS, and the Chalice app served on loopback.

`skiff up` runs `serve()` in the foreground (Ctrl-C stops it cleanly) or, with --detach, in a
background process whose pid and address are kept in the state directory for `skiff down` and
`skiff status`. The environment is set before chalicelib is imported, so the same handlers that run
in Lambda run here against moto through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Layout:
    home: Path

    @property
    def state(self) -> Path:
        return self.home / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.home / "kubeconfig"

    @property
    def log(self) -> Path:
        return self.home / "skiff.log"

    @property
    def moto_log(self) -> Path:
        return self.home / "moto.log"


def default_home() -> Path:
    return Path(os.environ.get("SKIFF_HOME") or Path.cwd() / ".skiff").resolve()


class StartError(Exception):
    """A reason the cluster cannot start, worded for the person who ran `skiff up`."""


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_http(url: str, timeout: float, context: ssl.SSLContext | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as r:  # noqa: S310 - loopback only
                if r.status < 500:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def aws_env(endpoint: str) -> dict[str, str]:
    """Environment for an emulated AWS (moto or LocalStack accept any credentials)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "skiff-local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "skiff-local"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "AWS_REGION": os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
    }


def start_moto(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    proc = subprocess.Popen([sys.executable, "-m", "skiff.motoserver", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if not wait_http(f"http://127.0.0.1:{port}/moto-api/", 30):
        proc.kill()
        raise StartError(f"moto server did not start on port {port}; see {log_path}")
    return proc


@dataclass(frozen=True)
class NodeOptions:
    """The worker nodes `skiff up` starts with: how many, of which EC2 type, and what runs them
    ("docker": the real node agent on local Docker; "hollow": simulated agents, no containers)."""

    count: int = 2
    instance_type: str = "t3.large"
    runtime: str = "docker"
    registry_port: int = 5101


def progress(message: str) -> None:
    print(f"skiff: {message}", flush=True)


def docker_client_or_fail() -> Any:
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception as e:  # noqa: BLE001 - any failure means the same thing to the user
        raise StartError(f"Docker is not reachable ({type(e).__name__}: {e}). The node agents run pods on the "
                         "local Docker engine: install it (Debian: apt-get install docker.io) and start dockerd, "
                         "or start without real nodes: --node-runtime hollow, or --nodes 0.") from e


def serve(layout: Layout, *, host: str, port: int, moto_port: int, aws_endpoint: str | None = None,
          nodes: NodeOptions | None = None) -> None:
    """Run moto (unless `aws_endpoint` names another AWS, e.g. LocalStack), the API, the controllers, the
    local registry and the node agents until SIGTERM or Ctrl-C; writes the state file and kubeconfig first."""
    nodes = nodes or NodeOptions(count=0, runtime="hollow")
    real_nodes = nodes.runtime == "docker"
    checks = [(port, "the API", "--port")] + ([] if aws_endpoint else [(moto_port, "moto server (the local AWS)",
                                                                       "--aws-port")])
    if real_nodes:
        checks.append((nodes.registry_port, "the local registry (ECR's stand-in)", "--registry-port"))
    for p, what, flag in checks:
        if not port_free(host, p):
            raise StartError(f"port {p} on {host} is already in use, so {what} cannot listen there. "
                             f"Stop what uses it, or choose another port with {flag}.")
    if real_nodes:
        from skiff.agentproc import loopback_address

        try:
            loopback_address(0)
        except ValueError as e:
            raise StartError(str(e)) from e
    docker_client = docker_client_or_fail() if real_nodes else None
    layout.home.mkdir(parents=True, exist_ok=True)
    progress("starting moto server as the local AWS" if not aws_endpoint else f"using the AWS at {aws_endpoint}")
    moto = None if aws_endpoint else start_moto(moto_port, layout.moto_log)
    endpoint = aws_endpoint or f"http://127.0.0.1:{moto_port}"
    os.environ.update(aws_env(endpoint))
    registry = None
    runners: list[Any] = []
    try:
        from chalice.config import Config

        from chalicelib.api.auth import issue_token
        from chalicelib.bootstrap import ensure_builtin_objects
        from chalicelib.store.models import ensure_tables
        from skiff import kubeconfig, tls

        progress("creating the DynamoDB tables and the built-in namespaces")
        ensure_tables()
        ensure_builtin_objects()
        ensure_launch_template()
        token = issue_token("admin", description="skiff up")
        cert, key = tls.ensure_certificate(layout.home)
        url = f"https://{host}:{port}"
        kubeconfig.write(layout.kubeconfig, server=url, token=token, ca_cert=cert.read_bytes())
        state: dict[str, Any] = {"pid": os.getpid(), "moto_pid": moto.pid if moto else None, "url": url,
                                 "ca_cert": str(cert), "aws_endpoint": endpoint, "kubeconfig": str(layout.kubeconfig),
                                 "nodes": nodes.count, "node_runtime": nodes.runtime, "ready": False}
        mirrors = ""
        if real_nodes:
            registry, ecr_host = _start_registry(layout, nodes.registry_port)
            mirrors = f"{ecr_host}={registry.host}"
            state.update({"registry": registry.host, "registry_pid": registry.process.pid, "ecr_registry": ecr_host})
        import app as chalice_app

        server = _local_server(chalice_app.app, Config(chalice_stage="local"), host, port)
        # The TLS handshake runs in each request's thread, not in the accepting one.
        server.server.socket = tls.server_context(cert, key).wrap_socket(
            server.server.socket, server_side=True, do_handshake_on_connect=False)
        _write_state(layout, state)
        progress(f"API listening on {url}; starting the stream runner (controllers, scheduler, provisioner)")
        runners = _event_sources(layout, chalice_app)
        from skiff.fleet import AgentSettings, start_fleet

        # Each running EC2 instance of the cluster in moto becomes a node: a real agent on local Docker, or a
        # hollow (simulated) one.
        agents = None
        if real_nodes:
            agents = AgentSettings(bootstrap_token=issue_token("bootstrap", description="skiff up: node agents"),
                                   home=layout.home / "agents", registry_mirrors=mirrors, docker_client=docker_client)
        runners.append(start_fleet(layout.home, url, cert, agents))
        threading.Thread(target=_bring_up_nodes, args=(layout, state, nodes, url, cert, token), daemon=True,
                         name="skiff-nodes").start()

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        print(f"Skiff API listening on {url} (AWS endpoint {endpoint})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        progress("stopping: node agents (their containers are removed), controllers, registry, moto")
        for runner in reversed(runners):
            with contextlib.suppress(Exception):
                runner.stop()
        if registry is not None:
            registry.stop()
        if moto is not None:
            moto.terminate()
            try:
                moto.wait(5)
            except subprocess.TimeoutExpired:
                moto.kill()
        if layout.state.exists():
            layout.state.unlink()
        progress("stopped")


def _write_state(layout: Layout, state: dict[str, Any]) -> None:
    tmp = layout.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(layout.state)


def _start_registry(layout: Layout, port: int) -> tuple[Any, str]:
    """The local registry standing in for ECR: the password is the one moto's ECR hands out."""
    import boto3

    from skiff.registry import RegistryError, registry_password_from_ecr, start_registry

    ecr = boto3.client("ecr")
    account = boto3.client("sts").get_caller_identity()["Account"]
    ecr_host = f"{account}.dkr.ecr.{ecr.meta.region_name}.amazonaws.com"
    progress(f"starting the local registry on 127.0.0.1:{port} as {ecr_host}")
    try:
        return start_registry(layout.home / "registry", port, registry_password_from_ecr(ecr)), ecr_host
    except RegistryError as e:
        raise StartError(str(e)) from e


def _bring_up_nodes(layout: Layout, state: dict[str, Any], nodes: NodeOptions, url: str, cert: Path,
                    token: str) -> None:
    """Launch the cluster's first instances in moto (the fleet turns each into a node), wait until their Nodes
    are Ready, then mark the state ready."""
    try:
        launched = launch_static_nodes(nodes.count, nodes.instance_type)
        if nodes.count:
            progress(f"{nodes.count} EC2 instance(s) of type {nodes.instance_type} running in moto "
                     f"({launched} launched now); waiting for their node agents to register")
        ready = wait_nodes_ready(url, cert, token, nodes.count, timeout=90)
        progress(f"{ready} node(s) Ready")
        state["ready"] = True
        _write_state(layout, state)
        progress("ready")
    except Exception as e:  # noqa: BLE001 - said loudly; the API stays up so the user can look
        progress(f"ERROR: the nodes did not come up: {e}")
        state["error"] = str(e)
        _write_state(layout, state)


STATIC_TAG = "skiff:static"


def launch_static_nodes(count: int, instance_type: str) -> int:
    """Make `count` running instances tagged as the cluster's static nodes (not the provisioner's)."""
    import boto3

    from chalicelib.provisioner import aws

    ec2 = boto3.client("ec2")
    running = ec2.describe_instances(Filters=[
        {"Name": f"tag:{aws.TAG_CLUSTER}", "Values": [aws.cluster_name()]},
        {"Name": f"tag:{STATIC_TAG}", "Values": ["true"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    have = sum(len(r["Instances"]) for r in running["Reservations"])
    missing = max(0, count - have)
    if missing:
        ec2.run_instances(
            LaunchTemplate={"LaunchTemplateName": LAUNCH_TEMPLATE}, InstanceType=instance_type, MinCount=missing,
            MaxCount=missing, TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": aws.TAG_CLUSTER, "Value": aws.cluster_name()}, {"Key": STATIC_TAG, "Value": "true"},
                {"Key": "Name", "Value": f"skiff-{aws.cluster_name()}-static"}]}])
    return missing


def wait_nodes_ready(url: str, cert: Path, token: str, count: int, *, timeout: float) -> int:
    """Wait until `count` Nodes are Ready (through the API, as a user would see them)."""
    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + timeout
    ready = 0
    while True:
        req = urllib.request.Request(f"{url}/api/v1/nodes", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=5, context=context) as r:  # noqa: S310 - loopback only
                items = json.loads(r.read()).get("items") or []
            ready = sum(1 for n in items if any(c.get("type") == "Ready" and c.get("status") == "True"
                                                for c in (n.get("status") or {}).get("conditions") or []))
        except OSError:
            pass
        if ready >= count:
            return ready
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {ready} of {count} node(s) became Ready within {timeout:.0f}s; "
                               "see the agents' logs in the state directory's agents/ folder")
        time.sleep(0.5)


LAUNCH_TEMPLATE = "skiff-node"


def ensure_launch_template() -> None:
    """The worker launch template NodePools name by default (on AWS the Pulumi program makes it)."""
    import boto3

    ec2 = boto3.client("ec2")
    existing = ec2.describe_launch_templates(
        Filters=[{"Name": "launch-template-name", "Values": [LAUNCH_TEMPLATE]}])["LaunchTemplates"]
    if not existing:
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ec2.create_launch_template(LaunchTemplateName=LAUNCH_TEMPLATE, LaunchTemplateData={
            "ImageId": image, "MetadataOptions": {"HttpTokens": "required"}})


def _local_server(app_obj: Any, config: Any, host: str, port: int) -> Any:
    """Chalice's local dev server (as `chalice local` builds it) with streaming watches."""
    from chalice.local import LocalChalice, LocalDevServer

    from skiff.watchstream import StreamingRequestHandler

    class _LocalApp(LocalChalice, app_obj.__class__):  # type: ignore[misc, name-defined]
        pass

    app_obj.__class__ = _LocalApp
    return LocalDevServer(app_obj, config, host, port, handler_cls=StreamingRequestHandler)


def _event_sources(layout: Layout, chalice_app: Any) -> list[Any]:
    """What Lambda's event source mapping and EventBridge do on AWS: the stream feeds the controllers'
    handler, the schedule fires the resync (same handlers, same event shapes)."""
    from chalicelib import settings
    from chalicelib.store.models import ObjectRecord
    from skiff.schedules import Schedule
    from skiff.streams import StreamRunner

    controllers = StreamRunner(
        "controllers", ObjectRecord.Meta.table_name, chalice_app.on_objects_change, batch_size=100,
        batching_window_seconds=settings.stream_batch_window_seconds(), max_retry_attempts=5,
        failure_destination=layout.home / "failed-records.jsonl",
        checkpoint_path=layout.home / "checkpoints" / "controllers.json")
    provisioner = StreamRunner(
        "provisioner", ObjectRecord.Meta.table_name, chalice_app.on_capacity_change, batch_size=100,
        batching_window_seconds=settings.stream_batch_window_seconds(), max_retry_attempts=5,
        failure_destination=layout.home / "failed-records.jsonl",
        checkpoint_path=layout.home / "checkpoints" / "provisioner.json")
    resync = Schedule("resync", chalice_app.resync, settings.resync_seconds())
    for runner in (controllers, provisioner, resync):
        runner.start()
    return [controllers, provisioner, resync]


def read_state(layout: Layout) -> dict[str, object] | None:
    try:
        state: dict[str, object] = json.loads(layout.state.read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    return state


def _stop_leftover_agents(layout: Layout) -> None:
    """Agents and containers a killed server could not stop itself (normally the fleet stops them)."""
    try:
        fleet = json.loads((layout.home / "fleet.json").read_text())
    except (OSError, ValueError):
        return
    names = []
    for node in fleet.get("nodes") or []:
        pid = node.get("pid")
        if isinstance(pid, int) and _alive(pid):
            os.kill(pid, signal.SIGKILL)
        if node.get("runtime") == "docker":
            names.append(str(node.get("name")))
    if names:
        with contextlib.suppress(Exception):
            import docker

            from skiff.agentproc import remove_node_containers

            client = docker.from_env()
            for name in names:
                remove_node_containers(client, name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def stop(layout: Layout, timeout: float = 40) -> bool:
    """Stop a running local cluster; False when none runs."""
    state = read_state(layout)
    if state is None:
        return False
    pid = int(state["pid"])  # type: ignore[call-overload]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    for key in ("moto_pid", "registry_pid"):
        child = state.get(key)
        if isinstance(child, int) and _alive(child):
            os.kill(child, signal.SIGKILL)
    _stop_leftover_agents(layout)
    if layout.state.exists():
        layout.state.unlink()
    return True
