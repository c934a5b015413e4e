"""A real node agent for one local "instance": `skiff-agent` in its own process, on local Docker.

Why this exists: locally an EC2 instance in moto is a record, not a machine (DESIGN.md, known
constraints), so the local runtime plays the machine booting: for each running instance it starts
the node agent (`node-agent/`) as a child process with what user data and instance metadata would
give it on AWS: the API URL, the cluster's bootstrap token (exchanged by the agent for its own node
credential through the API, as on AWS), and the instance's facts. Each local node gets its own
loopback address (127.0.1.x) as its InternalIP, so hostPorts of pods on different nodes do not
collide and `curl <node IP>:<hostPort>` reaches them. When the instance goes (terminated, or `skiff
down`), the machine is gone: the agent is stopped and its containers are removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skiff_agent.node import NodeConfig

log = logging.getLogger("skiff.agentproc")

Obj = dict[str, Any]
NODE_LABEL = "io.skiff.node"  # skiff_agent.labels.NODE


def loopback_address(index: int, prefix: str | None = None) -> str:
    """The node's own loopback address (127.0.1.1, 127.0.1.2, ...): Linux routes all of 127/8 to lo. Clusters
    running side by side on one machine choose different prefixes (SKIFF_NODE_ADDRESS_PREFIX, default 127.0),
    so their nodes' hostPorts do not meet."""
    prefix = prefix or os.environ.get("SKIFF_NODE_ADDRESS_PREFIX") or "127.0"
    parts = prefix.split(".")
    if len(parts) != 2 or parts[0] != "127" or not parts[1].isdigit() or not 0 <= int(parts[1]) <= 255:
        raise ValueError(f"SKIFF_NODE_ADDRESS_PREFIX must be 127.<0-255>, not {prefix!r}")
    if not 0 <= index < 254 * 254:
        raise ValueError(f"no loopback address for node index {index}")
    return f"{prefix}.{1 + index // 254}.{1 + index % 254}"


def agent_env(config: NodeConfig, *, api_url: str, ca_file: Path, bootstrap_token: str, instance_id: str,
              state_dir: Path, cluster_name: str, registry_mirrors: str, aws: Mapping[str, str],
              extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment user data and instance metadata would give the agent on AWS."""
    alloc = config.allocatable()
    labels = ",".join(f"{k}={v}" for k, v in config.labels.items())
    taints = ",".join(f"{t['key']}{'=' + str(t['value']) if t.get('value') else ''}:{t['effect']}"
                      for t in config.taints)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "SKIFF_API_URL": api_url, "SKIFF_CA_FILE": str(ca_file), "SKIFF_BOOTSTRAP_TOKEN": bootstrap_token,
        "SKIFF_INSTANCE_ID": instance_id, "SKIFF_NODE_NAME": config.name, "SKIFF_PROVIDER_ID": config.provider_id,
        "SKIFF_ZONE": config.zone, "SKIFF_INSTANCE_TYPE": config.instance_type, "SKIFF_NODE_IP": config.internal_ip,
        "SKIFF_NODE_DNS": config.internal_dns, "SKIFF_NODE_CPU": f"{config.cpu_milli}m",
        "SKIFF_NODE_MEMORY": str(config.memory_bytes), "SKIFF_NODE_ALLOCATABLE_CPU": alloc["cpu"],
        "SKIFF_NODE_ALLOCATABLE_MEMORY": alloc["memory"], "SKIFF_NODE_MAX_PODS": str(config.max_pods),
        "SKIFF_NODE_LABELS": labels, "SKIFF_NODE_TAINTS": taints, "SKIFF_POD_CIDR": config.pod_cidr,
        "SKIFF_STATE_DIR": str(state_dir), "SKIFF_CLUSTER_NAME": cluster_name,
        "SKIFF_REGISTRY_MIRRORS": registry_mirrors, "SKIFF_HOST_PORT_ADDRESS": config.internal_ip,
        **aws,
    }
    for key in ("SKIFF_BACKOFF_SECONDS", "SKIFF_AGENT_RESYNC_SECONDS", "SKIFF_SANDBOX_IMAGE", "DOCKER_HOST"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    env.update(extra or {})
    return env


def remove_node_containers(docker_client: Any, node: str) -> int:
    """Remove every container and volume of `node` (its machine is gone); how many containers went."""
    removed = 0
    try:
        for c in docker_client.containers.list(all=True, filters={"label": f"{NODE_LABEL}={node}"}):
            with contextlib.suppress(Exception):
                c.remove(force=True)
                removed += 1
        for v in docker_client.volumes.list(filters={"label": f"{NODE_LABEL}={node}"}):
            with contextlib.suppress(Exception):
                v.remove(force=True)
    except Exception:  # noqa: BLE001 - Docker gone: nothing left to remove
        log.warning("could not list the containers of node %s", node, exc_info=True)
    return removed


class AgentProcess:
    """One node agent process; the Fleet's node for the docker runtime (same duck type as HollowNode)."""

    def __init__(self, config: NodeConfig, env: Mapping[str, str], log_path: Path, docker_client: Any = None) -> None:
        self.config = config
        self.env = dict(env)
        self.log_path = log_path
        self.docker = docker_client
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def stopped(self) -> bool:
        return self._stopping

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> AgentProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "skiff_agent.main"], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.info("node agent %s started (pid %d, log %s)", self.name, self.proc.pid, self.log_path)
        return self

    def request_stop(self) -> None:
        self._stopping = True
        if self.alive and self.proc is not None:
            with contextlib.suppress(OSError):
                os.kill(self.proc.pid, signal.SIGCONT)  # a paused agent (a test's doing) must hear SIGTERM
                self.proc.terminate()

    def stop(self, timeout: float = 10.0) -> bool:
        """The machine goes away: stop the agent, then remove every container and volume of this node."""
        self.request_stop()
        ok = True
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                ok = False
        self.remove_containers()
        return ok

    def credential(self) -> str:
        """The node credential the agent obtained (kept in its state directory), or ""."""
        path = Path(self.env.get("SKIFF_STATE_DIR", "")) / f"{self.name}.token"
        try:
            return path.read_text().strip()
        except OSError:
            return ""

    def remove_containers(self) -> int:
        return remove_node_containers(self.docker, self.name) if self.docker is not None else 0

    def describe(self) -> Obj:
        return {"name": self.name, "providerID": self.config.provider_id, "runtime": "docker", "pid": self.pid,
                "alive": self.alive, "internalIP": self.config.internal_ip, "log": str(self.log_path),
                "restarts": self.restarts}
