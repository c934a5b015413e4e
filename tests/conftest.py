"""Shared fixtures: an in-process moto DynamoDB with Skiff's tables, and an API client on top."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("SKIFF_WATCH_CAP_SECONDS", "2")
os.environ.setdefault("SKIFF_WATCH_POLL_SECONDS", "0.02")
os.environ.setdefault("SKIFF_CONTROLLER_WORKERS", "1")  # in-process moto is not thread safe


def _transactions_like_dynamodb() -> None:
    """moto applies a transaction's items one by one and rolls back a failed one by restoring a copy of
    the whole table, which also cuts off open stream iterators. The local runtime's moto server checks
    all conditions first and applies nothing on failure, as DynamoDB does; unit tests use the same."""
    from skiff.motoserver import fast_transactions

    fast_transactions()


_transactions_like_dynamodb()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh in-process moto AWS with Skiff's tables and built-in namespaces."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from moto import mock_aws

    with mock_aws():
        from chalicelib.store import objects
        from chalicelib.store.models import ensure_tables

        objects._known_head.clear()
        ensure_tables()
        yield


@pytest.fixture
def cluster(aws: None) -> Iterator[None]:
    """Tables plus the built-in namespaces, with the per-process caches reset."""
    from chalicelib import bootstrap
    from chalicelib.api import auth

    bootstrap._done = False
    auth._cache.clear()
    bootstrap.ensure_builtin_objects()
    yield
    bootstrap._done = False
    auth._cache.clear()


class APIClient:
    """Calls the API's entry point directly, as app.py does, with a bearer token."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def request(self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None,
                content_type: str = "application/json", headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> tuple[int, Any]:
        from chalicelib.api.http import Request
        from chalicelib.api.server import handle

        hdrs = {"content-type": content_type, **(headers or {})}
        if self.token:
            hdrs["authorization"] = f"Bearer {self.token}"
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        resp = handle(Request(method=method, path=path, query={k: [v] for k, v in (query or {}).items()},
                              headers=hdrs, body=data))
        text = resp.encoded()
        if resp.headers.get("Content-Type") == "application/json" and text and "\n" not in text.strip():
            return resp.status, json.loads(text)
        return resp.status, text

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, content_type: str = "application/merge-patch+json",
              **kw: Any) -> tuple[int, Any]:
        return self.request("PATCH", path, body, content_type=content_type, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def admin(cluster: None) -> APIClient:
    from chalicelib.api.auth import issue_token

    return APIClient(issue_token("admin"))


@pytest.fixture
def node_client(cluster: None) -> APIClient:
    from chalicelib.api.auth import issue_token

    return APIClient(issue_token("node", node="node-a"))


# --- a live local cluster (`skiff up --detach`), shared by the integration and agent tests ---


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveCluster:
    url: str
    kubeconfig: Path
    home: Path
    aws_endpoint: str

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_kubectl(self.kubeconfig, *args, input=input, check=check, timeout=timeout)


def run_kubectl(kubeconfig: Path, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """kubectl against a cluster's kubeconfig; AssertionError with its stderr when it fails and `check`."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is required for the integration and end-to-end tests (Debian: kubernetes-client)"
    proc = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), *args], input=input,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


DOCKER_REQUIRED = "Docker is required for the agent and end-to-end tests: apt-get install docker.io and start dockerd"


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """The local Docker engine (the node agents' runtime). Without one the tests fail saying so, never skip."""
    try:
        import docker
    except ImportError:
        pytest.fail("the docker Python SDK is missing from this environment; it is the node agent's dependency "
                    "(pip install -e node-agent, or pip install docker)", pytrace=False)
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as e:  # DockerException, connection errors: no engine answers
        pytest.fail(f"{DOCKER_REQUIRED} ({type(e).__name__}: {e})", pytrace=False)
    return client


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    home = tmp_path_factory.mktemp("skiff-home")
    port, aws_port = free_port(), free_port()
    # A short batching window and resync keep the tests quick; the semantics are the same.
    env = {**os.environ, "SKIFF_HOME": str(home), "SKIFF_STREAM_BATCH_WINDOW_SECONDS": "0.2",
           "SKIFF_RESYNC_SECONDS": "2", "SKIFF_CONTROLLER_WORKERS": "4"}
    env.pop("AWS_ENDPOINT_URL", None)
    up = subprocess.run([sys.executable, "-m", "skiff.cli", "up", "--detach", "--port", str(port),
                         "--aws-port", str(aws_port), "--nodes", "0", "--node-runtime", "hollow"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert up.returncode == 0, f"skiff up failed:\n{up.stdout}\n{up.stderr}"
    last = up.stdout.strip().splitlines()[-1]
    assert last.startswith("export KUBECONFIG="), up.stdout
    cluster = LiveCluster(url=f"https://127.0.0.1:{port}", kubeconfig=Path(last.split("=", 1)[1]), home=home,
                          aws_endpoint=f"http://127.0.0.1:{aws_port}")
    try:
        yield cluster
    finally:
        subprocess.run([sys.executable, "-m", "skiff.cli", "down"], env=env, capture_output=True, timeout=60)


@pytest.fixture
def remote_store(live: LiveCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's store talks to the live cluster's moto server (as a second control-plane process)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", live.aws_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "skiff-local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "skiff-local")
    monkeypatch.setenv("SKIFF_CONTROLLER_WORKERS", "4")
    from chalicelib.store import objects
    from chalicelib.store.models import ALL_MODELS

    objects._known_head.clear()
    for m in ALL_MODELS:  # PynamoDB caches its client; make it pick up the endpoint
        m._connection = None
    yield
    objects._known_head.clear()
    for m in ALL_MODELS:
        m._connection = None
