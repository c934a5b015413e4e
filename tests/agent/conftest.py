"""Fixtures for the node agent's tests against the real Docker engine and a real local registry.

Docker is required: without a reachable dockerd these tests fail with what to install, they are never
skipped. The registry is Debian's docker-registry on a free loopback port for this session, with the
password moto's ECR grants the default account, as `skiff up` runs it.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from skiff.agentproc import remove_node_containers
from tests.conftest import free_port

try:
    import skiff_agent  # noqa: F401
except ImportError:  # not installed into the venv yet: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "node-agent"))

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ECR_HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> str:
    """The shared test image's name (kept after the tests: other suites use it too)."""
    from skiff.testimage import DEFAULT_NAME, ensure_test_image

    ensure_test_image(docker_client, DEFAULT_NAME)
    return DEFAULT_NAME


@dataclass(frozen=True)
class LocalRegistry:
    host: str  # 127.0.0.1:<port>
    password: str


def _moto_ecr_password() -> str:
    from moto import mock_aws

    from skiff.registry import registry_password_from_ecr

    with mock_aws():
        import boto3

        return registry_password_from_ecr(boto3.client("ecr", region_name=REGION))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A docker-registry for this session whose htpasswd holds the password moto's ECR token carries."""
    from skiff.registry import start_registry

    password = _moto_ecr_password()
    proc = start_registry(tmp_path_factory.mktemp("registry"), free_port(), password)
    try:
        yield LocalRegistry(host=proc.host, password=password)
    finally:
        proc.stop()


@pytest.fixture
def ecr(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process moto ECR client (region us-east-1, moto's default account)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from moto import mock_aws

    with mock_aws():
        import boto3

        yield boto3.client("ecr", region_name=REGION)


@dataclass(frozen=True)
class PushedImage:
    ecr_ref: str  # the name a pod spec uses: <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>
    repository: str  # <repo>
    digest: str  # the manifest digest the registry stored


@pytest.fixture
def local_refs(docker_client: Any) -> Iterator[list[str]]:
    """Image references a test creates on the engine; each is untagged afterwards."""
    import docker.errors

    refs: list[str] = []
    yield refs
    for ref in refs:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_image(ref)


@pytest.fixture
def pushed_image(docker_client: Any, busybox_image: str, registry: LocalRegistry, ecr: Any,
                 local_refs: list[str]) -> PushedImage:
    """The test image pushed to the local registry under a fresh tag, known to moto's ECR as a repository,
    and absent from the engine under its ECR name."""
    from skiff.registry import ensure_repository, push

    repository, tag = "skiff-agent-test/busybox", f"t{uuid.uuid4().hex[:10]}"
    ensure_repository(ecr, repository)
    digest = push(docker_client, busybox_image, f"{repository}:{tag}", registry.host, registry.password)
    mirror_ref = f"{registry.host}/{repository}:{tag}"
    docker_client.api.remove_image(mirror_ref)  # only the registry has it now
    ecr_ref = f"{ECR_HOST}/{repository}:{tag}"
    local_refs.extend([ecr_ref, mirror_ref])
    return PushedImage(ecr_ref=ecr_ref, repository=repository, digest=digest)


# --- a real node agent against the session's live cluster ---


@dataclass
class AgentNode:
    """An in-process node agent registered with the live cluster, and helpers to drive its pods."""

    name: str
    ip: str
    live: Any
    agent: Any
    token: str

    def kubectl_json(self, *args: str) -> Any:
        import json

        return json.loads(self.live.kubectl(*args, "-o", "json").stdout)

    def pod(self, name: str, namespace: str = "default") -> Any:
        return self.kubectl_json("get", "pod", name, "-n", namespace)

    def apply(self, manifest: dict[str, Any]) -> None:
        import json

        manifest.setdefault("spec", {})["nodeName"] = self.name
        self.live.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def node_token(live: Any, node: str) -> str:
    """A node token for `node`, made by `skiff token create` against the live cluster's store."""
    import os
    import subprocess

    env = {**os.environ, "SKIFF_HOME": str(live.home), "AWS_ENDPOINT_URL": live.aws_endpoint,
           "AWS_ACCESS_KEY_ID": "skiff-local", "AWS_SECRET_ACCESS_KEY": "skiff-local"}
    out = subprocess.run([sys.executable, "-m", "skiff.cli", "token", "create", "--role", "node", "--node", node],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


_next_ip = [10]


def agent_config(live: Any, name: str, token: str, **overrides: Any) -> Any:
    from skiff_agent.config import AgentConfig
    from skiff_agent.node import GIB, NodeConfig

    _next_ip[0] += 1
    ip = overrides.pop("ip", f"127.0.0.{_next_ip[0]}")
    node = NodeConfig(name=name, cpu_milli=4000, memory_bytes=8 * GIB, internal_ip=ip,
                      taints=[{"key": "skiff.io/agent-test", "value": "true", "effect": "NoSchedule"}],
                      labels={"skiff.io/agent-test": "true"})
    return AgentConfig(api_url=live.url, node=node, ca_file=str(live.home / "apiserver.crt"), node_token=token,
                       host_port_address=ip, container_logs=False, backoff_seconds=1.0, resync_seconds=10.0,
                       **overrides)


@pytest.fixture(scope="module")
def agent_node(live: Any, docker_client: Any, busybox_image: str) -> Iterator[AgentNode]:
    """One agent for a test module: its node is tainted so the scheduler puts nothing else there; tests
    bind their pods to it with spec.nodeName. Every container it made is gone afterwards."""
    from skiff_agent.agent import Agent
    from skiff_agent.images import ImageConfig, ImagePuller

    del busybox_image
    name = f"agent-{uuid.uuid4().hex[:6]}"
    token = node_token(live, name)
    config = agent_config(live, name, token)
    agent = Agent(config, docker_client, images=ImagePuller(docker_client, ImageConfig(region=REGION))).start()
    node = AgentNode(name=name, ip=config.node.internal_ip, live=live, agent=agent, token=token)
    try:
        yield node
    finally:
        agent.stop()
        remove_node_containers(docker_client, name)
