"""The node agent as a separate process: `kill -9` and a restart adopt what runs and clean up orphans; a lost
API leaves containers running and status catches up; `kubectl logs` reads what the agent shipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from skiff.agentproc import remove_node_containers
from tests.agent.conftest import AgentNode, node_token
from tests.agent.tcpproxy import TCPProxy
from tests.agent.test_agent_pods import BUSYBOX, statuses, unique
from tests.waiting import wait_until


@dataclass
class AgentProcess:
    """`skiff-agent` in its own process, reaching the API through a proxy the test can cut."""

    node: AgentNode
    env: dict[str, str]
    log: Path
    proxy: TCPProxy
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "skiff_agent.main"], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def containers(self, docker_client: Any, pod: str) -> dict[tuple[str, int], str]:
        """(container name, attempt) -> Docker id, for the pod's app containers."""
        out = {}
        for c in docker_client.containers.list(all=True, filters={"label": f"io.skiff.pod.name={pod}"}):
            if c.labels["io.skiff.container.kind"] != "sandbox":
                key = (c.labels["io.skiff.container.name"], int(c.labels["io.skiff.container.attempt"]))
                assert key not in out, f"attempt {key} of {pod} exists twice"
                out[key] = c.id
        return out


@pytest.fixture(scope="module")
def agent_process(live: Any, docker_client: Any, busybox_image: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    del busybox_image
    name = f"agentp-{uuid.uuid4().hex[:6]}"
    token = node_token(live, name)
    proxy = TCPProxy("127.0.0.1", int(live.url.rsplit(":", 1)[1]))
    home = tmp_path_factory.mktemp("agent")
    env = {**os.environ, "SKIFF_API_URL": f"https://127.0.0.1:{proxy.port}",
           "SKIFF_CA_FILE": str(live.home / "apiserver.crt"), "SKIFF_NODE_TOKEN": token, "SKIFF_NODE_NAME": name,
           "SKIFF_NODE_IP": "127.0.0.40", "SKIFF_NODE_CPU": "4", "SKIFF_NODE_MEMORY": "8Gi",
           "SKIFF_NODE_TAINTS": "skiff.io/agent-test=true:NoSchedule", "SKIFF_STATE_DIR": str(home),
           "SKIFF_BACKOFF_SECONDS": "1", "SKIFF_AGENT_RESYNC_SECONDS": "5", "AWS_ENDPOINT_URL": live.aws_endpoint,
           "AWS_ACCESS_KEY_ID": "skiff-local", "AWS_SECRET_ACCESS_KEY": "skiff-local", "AWS_REGION": "us-east-1"}
    env.pop("SKIFF_CONTAINER_LOGS", None)
    agent = AgentProcess(node=AgentNode(name=name, ip="127.0.0.40", live=live, agent=None, token=token), env=env,
                         log=home / "agent.log", proxy=proxy)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()
        proxy.close()
        remove_node_containers(docker_client, name)
        print(agent.log.read_text()[-3000:])


def _sleeper(name: str, *, grace: int = 1) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": grace,
                     "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}}


def test_kill_9_and_restart_adopts_containers_and_removes_orphans(agent_process: AgentProcess,
                                                                   docker_client: Any) -> None:
    node = agent_process.node
    keep, deleting, forced = unique("keep"), unique("deleting"), unique("forced")
    for name in (keep, deleting, forced):
        node.apply(_sleeper(name))
    for name in (keep, deleting, forced):
        wait_until(f"{name} running", lambda n=name: node.pod(n)["status"].get("phase") == "Running")
    before = agent_process.containers(docker_client, keep)
    assert list(before) == [("c", 0)]

    agent_process.kill9()
    # while the agent is dead: one pod is deleted gracefully (it waits for the node), one is removed at once
    node.live.kubectl("delete", "pod", deleting, "--wait=false")
    node.live.kubectl("delete", "pod", forced, "--grace-period=0", "--force")
    assert node.live.kubectl("get", "pod", forced, check=False).returncode != 0
    assert agent_process.containers(docker_client, forced), "nothing stops containers while the agent is dead"
    agent_process.start()

    wait_until("the orphan's containers removed", lambda: not docker_client.containers.list(
        all=True, filters={"label": f"io.skiff.pod.name={forced}"}))
    wait_until("the graceful deletion confirmed",
               lambda: node.live.kubectl("get", "pod", deleting, check=False).returncode != 0, timeout=60)
    assert not docker_client.containers.list(all=True, filters={"label": f"io.skiff.pod.name={deleting}"})
    time.sleep(3)  # a few sync passes of the new agent
    assert agent_process.containers(docker_client, keep) == before, "the running container was adopted, not redone"
    pod = node.pod(keep)
    assert pod["status"]["phase"] == "Running" and statuses(pod)["c"]["restartCount"] == 0
    node.live.kubectl("delete", "pod", keep, "--wait=false")


def test_lost_api_leaves_containers_running_and_status_catches_up(agent_process: AgentProcess,
                                                                  docker_client: Any) -> None:
    node = agent_process.node
    steady, flaky = unique("steady"), unique("flaky")
    node.apply(_sleeper(steady))
    node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": flaky},
                "spec": {"terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "sleep 2; exit 1"]}]}})
    for name in (steady, flaky):
        wait_until(f"{name} running", lambda n=name: node.pod(n)["status"].get("phase") == "Running")
    steady_ids = agent_process.containers(docker_client, steady)

    agent_process.proxy.cut()
    try:
        attempts_then = max(a for _, a in agent_process.containers(docker_client, flaky))
        wait_until("the flaky container restarted while the API is away", lambda: max(
            a for _, a in agent_process.containers(docker_client, flaky)) >= attempts_then + 2, timeout=60)
        assert agent_process.containers(docker_client, steady) == steady_ids
        assert docker_client.containers.get(steady_ids[("c", 0)]).status == "running"
    finally:
        agent_process.proxy.restore()
    # once the API is back the status says what happened meanwhile
    wait_until("restartCount caught up", lambda: statuses(node.pod(flaky))["c"]["restartCount"] >= attempts_then + 2,
               timeout=60)
    for name in (steady, flaky):
        node.live.kubectl("delete", "pod", name, "--wait=false")


def test_kubectl_logs_reads_what_the_agent_shipped(agent_process: AgentProcess) -> None:
    node = agent_process.node
    name = unique("logs")
    script = 'n=$(cat /data/n 2>/dev/null || echo 0); echo $((n+1)) > /data/n; ' \
             'for i in 1 2 3; do echo "run $n line $i"; done; echo "to stderr" >&2; sleep 2; exit 1'
    node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"terminationGracePeriodSeconds": 0, "volumes": [{"name": "d", "emptyDir": {}}],
                         "containers": [{"name": "talker", "image": BUSYBOX, "command": ["sh", "-c", script],
                                         "volumeMounts": [{"name": "d", "mountPath": "/data"}]},
                                        {"name": "quiet", "image": BUSYBOX, "command": ["sleep", "3600"]}]}})
    wait_until("a restart", lambda: statuses(node.pod(name)).get("talker", {}).get("restartCount", 0) >= 1)

    def logs(*args: str) -> str:
        proc = node.live.kubectl("logs", name, *args, check=False)
        return proc.stdout if proc.returncode == 0 else ""

    wait_until("the current run's lines", lambda: "run 1 line 3" in logs("-c", "talker"))
    # stdout keeps its order; a stderr line written in the same millisecond may sort either side of it
    current = logs("-c", "talker").splitlines()
    assert [line for line in current if line.startswith("run")] == ["run 1 line 1", "run 1 line 2", "run 1 line 3"]
    assert "to stderr" in current
    previous = logs("-c", "talker", "--previous").splitlines()
    assert [line for line in previous if line.startswith("run")] == ["run 0 line 1", "run 0 line 2", "run 0 line 3"]
    assert logs("-c", "talker", "--tail=1").strip() == current[-1]
    stamped = [line for line in logs("-c", "talker", "--timestamps").splitlines() if line.endswith("run 1 line 1")]
    assert stamped and stamped[0][:4].isdigit() and stamped[0].split(" ")[0].endswith("Z")
    missing = node.live.kubectl("logs", name, check=False)
    assert missing.returncode != 0 or "run" in missing.stdout  # kubectl picks the first container itself
    node.live.kubectl("delete", "pod", name, "--wait=false")
