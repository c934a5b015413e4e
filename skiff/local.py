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


def serve(layout: Layout, *, host: str, port: int, moto_port: int, aws_endpoint: str | None = None) -> None:
    """Run moto (unless `aws_endpoint` names another AWS, e.g. LocalStack) and the API until SIGTERM or
    Ctrl-C; writes the state file and kubeconfig first."""
    checks = [(port, "the API")] + ([] if aws_endpoint else [(moto_port, "moto server (the local AWS)")])
    for p, what in checks:
        if not port_free(host, p):
            raise StartError(f"port {p} on {host} is already in use, so {what} cannot listen there. "
                             f"Stop what uses it, or choose another port with --port/--aws-port.")
    layout.home.mkdir(parents=True, exist_ok=True)
    moto = None if aws_endpoint else start_moto(moto_port, layout.moto_log)
    endpoint = aws_endpoint or f"http://127.0.0.1:{moto_port}"
    os.environ.update(aws_env(endpoint))
    try:
        from chalice.config import Config

        from chalicelib.api.auth import issue_token
        from chalicelib.bootstrap import ensure_builtin_objects
        from chalicelib.store.models import ensure_tables
        from skiff import kubeconfig, tls

        ensure_tables()
        ensure_builtin_objects()
        ensure_launch_template()
        token = issue_token("admin", description="skiff up")
        cert, key = tls.ensure_certificate(layout.home)
        url = f"https://{host}:{port}"
        kubeconfig.write(layout.kubeconfig, server=url, token=token, ca_cert=cert.read_bytes())
        import app as chalice_app

        server = _local_server(chalice_app.app, Config(chalice_stage="local"), host, port)
        # The TLS handshake runs in each request's thread, not in the accepting one.
        server.server.socket = tls.server_context(cert, key).wrap_socket(
            server.server.socket, server_side=True, do_handshake_on_connect=False)
        layout.state.write_text(json.dumps({"pid": os.getpid(), "moto_pid": moto.pid if moto else None,
                                            "url": url, "ca_cert": str(cert), "aws_endpoint": endpoint,
                                            "kubeconfig": str(layout.kubeconfig)}))

        runners = _event_sources(layout, chalice_app)
        from skiff.fleet import start_fleet

        # Each running EC2 instance of the cluster in moto becomes a hollow node (a simulated agent).
        runners.append(start_fleet(layout.home, url, cert))

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        print(f"Skiff API listening on {url} (AWS endpoint {endpoint})", flush=True)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
        finally:
            for runner in runners:
                runner.stop()
    finally:
        if moto is not None:
            moto.terminate()
            try:
                moto.wait(5)
            except subprocess.TimeoutExpired:
                moto.kill()
        if layout.state.exists():
            layout.state.unlink()


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def stop(layout: Layout, timeout: float = 15) -> bool:
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
    moto_pid = state.get("moto_pid")
    if isinstance(moto_pid, int) and _alive(moto_pid):
        os.kill(moto_pid, signal.SIGKILL)
    if layout.state.exists():
        layout.state.unlink()
    return True
