"""`skiff up` as a user meets it: clear failures (Docker missing, a port taken), and Ctrl-C as a clean stop that
leaves no agent and no container behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import free_port


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "SKIFF_HOME": str(home), **extra}
    env.pop("AWS_ENDPOINT_URL", None)
    return env


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphaned child may wait for a reaper that never comes in a container)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_docker_missing_is_said_plainly(tmp_path: Path) -> None:
    up = subprocess.run([sys.executable, "-m", "skiff.cli", "up", "--port", str(free_port()), "--aws-port",
                         str(free_port()), "--registry-port", str(free_port())], capture_output=True, text=True,
                        env=_env(tmp_path, DOCKER_HOST="unix:///nonexistent/docker.sock"), timeout=60)
    assert up.returncode == 1
    assert "Docker is not reachable" in up.stderr and "apt-get install docker.io" in up.stderr
    assert "--node-runtime hollow" in up.stderr


def test_a_taken_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for flag in ("--port", "--registry-port"):
            args = {"--port": str(free_port()), "--aws-port": str(free_port()), "--registry-port": str(free_port())}
            args[flag] = str(port)
            up = subprocess.run([sys.executable, "-m", "skiff.cli", "up", "--detach",
                                 *[x for kv in args.items() for x in kv]], capture_output=True, text=True,
                                env=_env(tmp_path), timeout=60)
            assert up.returncode == 1, up.stdout
            assert f"port {port} on 127.0.0.1 is already in use" in up.stderr and flag in up.stderr


def test_ctrl_c_stops_everything_cleanly(tmp_path: Path, docker_client: Any) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "skiff.cli", "up", "--nodes", "1", "--port", str(free_port()),
                             "--aws-port", str(free_port()), "--registry-port", str(free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(tmp_path, SKIFF_FLEET_POLL_SECONDS="1", SKIFF_NODE_ADDRESS_PREFIX="127.43"))
    try:
        deadline = time.monotonic() + 120
        state: dict[str, Any] = {}
        while time.monotonic() < deadline and not state.get("ready"):
            time.sleep(0.5)
            try:
                state = json.loads((tmp_path / "state.json").read_text())
            except (OSError, ValueError):
                state = {}
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert state.get("ready"), "the cluster did not become ready"
        nodes = json.loads((tmp_path / "fleet.json").read_text())["nodes"]
        assert len(nodes) == 1 and nodes[0]["alive"]
        agent_pid = int(nodes[0]["pid"])
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "skiff: stopped" in out
    assert not (tmp_path / "state.json").exists()
    assert not _running(agent_pid), "the node agent was stopped"
    assert not docker_client.containers.list(all=True, filters={"label": f"io.skiff.node={nodes[0]['name']}"})
