"""A whole local cluster as a user starts it: `skiff up --detach` with real node agents on Docker.

The end-to-end tests drive it through kubectl only (and `skiff image push`, `skiff status`). Docker and
kubectl are required: without them the tests fail and say what to install, they are never skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, run_kubectl


@dataclass
class Cluster:
    home: Path
    kubeconfig: Path
    env: dict[str, str]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_kubectl(self.kubeconfig, *args, input=input, check=check, timeout=timeout)

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, manifest: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def skiff(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "skiff.cli", *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def fleet(self) -> list[dict[str, Any]]:
        return list(json.loads((self.home / "fleet.json").read_text()).get("nodes") or [])


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("skiff-e2e")
    env = {**os.environ, "SKIFF_HOME": str(home), "SKIFF_STREAM_BATCH_WINDOW_SECONDS": "0.2",
           "SKIFF_RESYNC_SECONDS": "2", "SKIFF_CONTROLLER_WORKERS": "4", "SKIFF_NODE_MONITOR_GRACE_SECONDS": "15",
           "SKIFF_FLEET_POLL_SECONDS": "1", "SKIFF_BACKOFF_SECONDS": "2",
           "SKIFF_NODE_ADDRESS_PREFIX": "127.42"}  # nodes' addresses apart from any other local cluster
    env.pop("AWS_ENDPOINT_URL", None)
    up = subprocess.run([sys.executable, "-m", "skiff.cli", "up", "--detach", "--port", str(free_port()),
                         "--aws-port", str(free_port()), "--registry-port", str(free_port()), "--nodes", "2"],
                        capture_output=True, text=True, env=env, timeout=180)
    assert up.returncode == 0, f"skiff up failed:\n{up.stdout}\n{up.stderr}"
    assert "skiff: ready" in up.stdout, up.stdout
    last = up.stdout.strip().splitlines()[-1]
    assert last.startswith("export KUBECONFIG="), up.stdout
    c = Cluster(home=home, kubeconfig=Path(last.split("=", 1)[1]), env=env)
    nodes: list[str] = []
    try:
        yield c
    finally:
        nodes = [str(n["name"]) for n in c.fleet()]
        down = c.skiff("down")
        print(down.stdout, down.stderr)
    left = [ctr.name for n in nodes
            for ctr in docker_client.containers.list(all=True, filters={"label": f"io.skiff.node={n}"})]
    assert not left, f"skiff down left containers behind: {left}"
