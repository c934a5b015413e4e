"""A live local cluster (`skiff up --detach`: moto server + the API on loopback) for integration tests.

Needs kubectl on PATH: the tests fail loudly without it, they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


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
        kubectl = shutil.which("kubectl")
        assert kubectl, "kubectl is required for the integration tests (Debian: kubernetes-client)"
        proc = subprocess.run([kubectl, "--kubeconfig", str(self.kubeconfig), *args], input=input,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    home = tmp_path_factory.mktemp("skiff-home")
    port, aws_port = free_port(), free_port()
    # A short batching window and resync keep the tests quick; the semantics are the same.
    env = {**os.environ, "SKIFF_HOME": str(home), "SKIFF_STREAM_BATCH_WINDOW_SECONDS": "0.2",
           "SKIFF_RESYNC_SECONDS": "2", "SKIFF_CONTROLLER_WORKERS": "4"}
    env.pop("AWS_ENDPOINT_URL", None)
    up = subprocess.run([sys.executable, "-m", "skiff.cli", "up", "--detach", "--port", str(port),
                         "--aws-port", str(aws_port)], capture_output=True, text=True, env=env, timeout=120)
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
