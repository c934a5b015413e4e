"""The node agent's pure parts: container specs to Docker arguments, phases and conditions, probe timing,
back-off, quantities, configuration errors, and the local fleet's agent environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skiff_agent import containerspec, quantity
from skiff_agent.config import ConfigError, from_env
from skiff_agent.node import NodeConfig
from skiff_agent.podworker import BackOff, terminated_state
from skiff_agent.probes import Outcome, Prober, run_probe
from skiff_agent.status import ContainerView, conditions, phase

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1", "labels": {"app": "a"}},
       "spec": {"serviceAccountName": "sa"}}


def ctx(**kw: Any) -> containerspec.PodContext:
    return containerspec.PodContext(pod=POD, node_name="n1", host_ip="10.0.0.1", pod_ip="172.17.0.9",
                                    sandbox_id="sb", **kw)


def configmaps(namespace: str, name: str) -> dict[str, Any] | None:
    return {"data": {"color": "blue", "size": "2"}} if (namespace, name) == ("ns", "cfg") else None


def test_environment_in_kubernetes_order_with_expansion() -> None:
    c = {"envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CM_"}],
         "env": [{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-$(CM_color)-$$(A)-$(MISSING)"},
                 {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                 {"name": "SIZE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "size"}}},
                 {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "none", "key": "k", "optional": True}}},
                 {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}],
         "resources": {"limits": {"memory": "64Mi"}}}
    env = containerspec.environment(c, ctx(), configmaps)
    assert env == {"CM_color": "blue", "CM_size": "2", "A": "x", "B": "x-blue-$(A)-$(MISSING)", "NODE": "n1",
                   "IP": "172.17.0.9", "APP": "a", "SIZE": "2", "MEM": "64"}


@pytest.mark.parametrize(("env", "message"), [
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}], 'configmap "absent" not found'),
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}], "couldn't find key k"),
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}], "no Secrets"),
    ([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}], "unsupported fieldRef"),
])
def test_environment_errors_are_config_errors(env: list[Any], message: str) -> None:
    with pytest.raises(containerspec.ContainerConfigError, match=message):
        containerspec.environment({"env": env}, ctx(), configmaps)


def test_create_args_map_command_args_limits_and_mounts() -> None:
    c = {"name": "web", "command": ["sh", "-c"], "args": ["echo $(A)"], "env": [{"name": "A", "value": "hi"}],
         "workingDir": "/w", "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "1Gi"}},
         "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
         "securityContext": {"runAsUser": 1000}}
    args = containerspec.create_args(c, ctx(volumes={"data": "vol-1"}), configmaps, image="img", kind="container",
                                     attempt=2)
    assert args["entrypoint"] == ["sh", "-c"] and args["command"] == ["echo hi"]
    assert args["nano_cpus"] == 500_000_000 and args["cpu_shares"] == 256
    assert args["mem_limit"] == 1024**3 == args["memswap_limit"]
    assert args["network_mode"] == "container:sb" and args["working_dir"] == "/w" and args["user"] == "1000"
    assert args["labels"]["io.skiff.container.attempt"] == "2" and args["labels"]["io.skiff.pod.uid"] == "u-1"
    assert args["mounts"][0]["Target"] == "/data" and args["mounts"][0]["ReadOnly"] is True
    only_args = containerspec.create_args({"name": "x", "args": ["a"]}, ctx(), configmaps, image="i", kind="init",
                                          attempt=0)
    assert "entrypoint" not in only_args and only_args["command"] == ["a"]
    with pytest.raises(containerspec.ContainerConfigError, match="not a volume of the pod"):
        containerspec.create_args({"name": "x", "volumeMounts": [{"name": "nope", "mountPath": "/n"}]}, ctx(),
                                  configmaps, image="i", kind="container", attempt=0)
    with pytest.raises(containerspec.ContainerConfigError, match="quantities must match"):
        containerspec.resource_limits({"resources": {"limits": {"memory": "lots"}}})


def test_host_ports_collect_every_container() -> None:
    pod = {"spec": {"containers": [{"ports": [{"containerPort": 80, "hostPort": 8080},
                                              {"containerPort": 53, "hostPort": 5353, "protocol": "UDP"},
                                              {"containerPort": 9000}]}]}}
    assert containerspec.host_ports(pod) == {"80/tcp": 8080, "53/udp": 5353}


def _view(state: dict[str, Any], last: dict[str, Any] | None = None, sidecar: bool = False) -> ContainerView:
    return ContainerView(name="c", image="i", state=state, last_state=last or {}, sidecar=sidecar)


RUNNING = {"running": {"startedAt": "t"}}
OK = {"terminated": {"exitCode": 0}}
FAIL = {"terminated": {"exitCode": 2}}
WAITING = {"waiting": {"reason": "ContainerCreating"}}
BACKOFF = {"waiting": {"reason": "CrashLoopBackOff"}}


@pytest.mark.parametrize(("policy", "init", "initialized", "containers", "expected"), [
    ("Always", [], True, [_view(RUNNING)], "Running"),
    ("Always", [], True, [_view(WAITING)], "Pending"),
    ("Always", [], True, [_view(BACKOFF, FAIL)], "Running"),
    ("Always", [], True, [_view(OK)], "Running"),
    ("Never", [], True, [_view(OK), _view(OK)], "Succeeded"),
    ("Never", [], True, [_view(OK), _view(FAIL)], "Failed"),
    ("OnFailure", [], True, [_view(FAIL)], "Running"),
    ("OnFailure", [], True, [_view(OK)], "Succeeded"),
    ("Always", [_view(RUNNING)], False, [_view(WAITING)], "Pending"),
    ("Never", [_view(FAIL)], False, [_view(WAITING)], "Failed"),
    ("OnFailure", [_view(FAIL)], False, [_view(WAITING)], "Pending"),
])
def test_phase_follows_kubelet(policy: str, init: list[ContainerView], initialized: bool,
                               containers: list[ContainerView], expected: str) -> None:
    assert phase(policy, init, True, initialized, containers) == expected


def test_conditions_keep_transition_times_and_add_pod_scheduled() -> None:
    first = conditions([], sandbox_ready=True, initialized=True, containers_ready=False, pod_phase="Running",
                       now="T1")
    by_type = {c["type"]: c for c in first}
    assert by_type["PodScheduled"]["status"] == "True"
    assert by_type["Ready"]["status"] == "False" and by_type["Ready"]["reason"] == "ContainersNotReady"
    second = {c["type"]: c for c in conditions(first, sandbox_ready=True, initialized=True, containers_ready=True,
                                               pod_phase="Running", now="T2")}
    assert second["Initialized"]["lastTransitionTime"] == "T1" and second["Ready"]["lastTransitionTime"] == "T2"
    done = {c["type"]: c for c in conditions(first, sandbox_ready=False, initialized=True, containers_ready=True,
                                             pod_phase="Succeeded", now="T3")}
    assert done["Ready"]["status"] == "False" and done["Ready"]["reason"] == "PodCompleted"


def test_prober_thresholds_and_timing() -> None:
    p = Prober("readiness", {"initialDelaySeconds": 5, "periodSeconds": 2, "successThreshold": 2,
                             "failureThreshold": 2}, started_at=100.0)
    assert not p.passing and not p.due(104.9) and p.due(105.0)
    assert not p.record(Outcome(True), 105.0) and p.next_due == 107.0
    assert p.record(Outcome(True), 107.0) and p.passing
    assert not p.record(Outcome(False, "x"), 109.0) and p.passing
    assert p.record(Outcome(False, "x"), 111.0) and not p.passing
    live = Prober("liveness", {}, started_at=0.0)
    assert live.passing and live.period == 10 and live.failure_threshold == 3


def test_run_probe_handlers() -> None:
    assert run_probe({"exec": {"command": ["true"]}}, {}, "", lambda cmd, t: (0, "")).ok
    failed = run_probe({"exec": {"command": ["false"]}}, {}, "", lambda cmd, t: (1, "nope"))
    assert not failed.ok and "exited with 1" in failed.message
    refused = run_probe({"tcpSocket": {"port": 1}, "timeoutSeconds": 1}, {}, "127.0.0.1", lambda c, t: (0, ""))
    assert not refused.ok and "TCP probe failed" in refused.message
    named = run_probe({"httpGet": {"port": "web"}}, {"ports": []}, "127.0.0.1", lambda c, t: (0, ""))
    assert not named.ok and "not a named port" in named.message
    assert not run_probe({}, {}, "", lambda c, t: (0, "")).ok


def test_back_off_is_immediate_then_doubles_to_the_cap_and_resets() -> None:
    b = BackOff(10, 300)
    delays = [b.next(0.0, 1.0) for _ in range(8)]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]
    assert b.next(0.0, 601.0) == 0  # ran ten minutes: start over
    resumed = BackOff(10, 300)
    resumed.resume(3)
    assert resumed.next(0.0, 1.0) == 40


def test_terminated_state_names_oom_and_start_errors() -> None:
    oom = terminated_state({"Id": "x", "State": {"ExitCode": 137, "OOMKilled": True,
                                                 "StartedAt": "2026-01-01T00:00:00.5Z",
                                                 "FinishedAt": "2026-01-01T00:00:01.5Z"}})
    assert oom["reason"] == "OOMKilled" and oom["exitCode"] == 137 and oom["startedAt"] == "2026-01-01T00:00:00Z"
    bad = terminated_state({"Id": "x", "State": {"ExitCode": 127, "Error": "exec: nope: not found",
                                                 "StartedAt": "0001-01-01T00:00:00Z",
                                                 "FinishedAt": "2026-01-01T00:00:01Z"}})
    assert bad["reason"] == "StartError" and bad["message"].startswith("exec") and bad["startedAt"]


@pytest.mark.parametrize(("value", "milli", "nbytes"), [("1", 1000, 1), ("250m", 250, 1), ("0.5", 500, 1),
                                                       ("1Ki", 1024000, 1024), ("1.5Gi", 1610612736000, 1610612736)])
def test_quantities(value: str, milli: int, nbytes: int) -> None:
    assert quantity.cpu_milli(value) == milli
    assert quantity.memory_bytes(value) == nbytes


def test_bad_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match="quantities must match"):
        quantity.parse("12 apples")


BASE = {"SKIFF_API_URL": "https://api", "SKIFF_NODE_NAME": "n1", "SKIFF_NODE_TOKEN": "t"}


@pytest.mark.parametrize(("change", "message"), [
    ({"SKIFF_API_URL": "api"}, "SKIFF_API_URL must be"),
    ({"SKIFF_NODE_TOKEN": ""}, "SKIFF_BOOTSTRAP_TOKEN"),
    ({"SKIFF_NODE_TOKEN": "", "SKIFF_BOOTSTRAP_TOKEN": "b"}, "needs the instance id"),
    ({"SKIFF_NODE_LABELS": "novalue"}, "SKIFF_NODE_LABELS"),
    ({"SKIFF_NODE_TAINTS": "k=v:Sometimes"}, "SKIFF_NODE_TAINTS"),
    ({"SKIFF_NODE_CPU": "fast"}, "malformed"),
    ({"SKIFF_NODE_NAME": "", "SKIFF_IMDS_URL": "http://127.0.0.1:9"}, "instance metadata service did not answer"),
])
def test_configuration_errors_name_the_variable(change: dict[str, str], message: str, tmp_path: Path) -> None:
    env = {**BASE, "SKIFF_STATE_DIR": str(tmp_path), **change}
    with pytest.raises(ConfigError, match=message):
        from_env(env)


def test_configuration_from_the_environment(tmp_path: Path) -> None:
    config = from_env({**BASE, "SKIFF_STATE_DIR": str(tmp_path), "SKIFF_NODE_CPU": "2", "SKIFF_NODE_MEMORY": "4Gi",
                       "SKIFF_INSTANCE_ID": "i-1", "SKIFF_ZONE": "us-east-1a", "SKIFF_NODE_IP": "127.0.1.5",
                       "SKIFF_NODE_LABELS": "a=b", "SKIFF_NODE_TAINTS": "gpu:NoSchedule,k=v:NoExecute"})
    assert config.node.provider_id == "aws:///us-east-1a/i-1" and config.node.cpu_milli == 2000
    assert config.node.taints == [{"key": "gpu", "effect": "NoSchedule"},
                                  {"key": "k", "value": "v", "effect": "NoExecute"}]
    assert config.host_port_address == "127.0.1.5" and config.node.node_labels()["a"] == "b"


def test_the_local_fleet_gives_each_agent_its_own_address_and_facts(tmp_path: Path) -> None:
    from skiff.agentproc import agent_env, loopback_address

    assert [loopback_address(i, "127.0") for i in (0, 1, 253, 254)] == ["127.0.1.1", "127.0.1.2", "127.0.1.254",
                                                                       "127.0.2.1"]
    assert loopback_address(0, "127.42") == "127.42.1.1"
    with pytest.raises(ValueError, match="127.<0-255>"):
        loopback_address(0, "10.0")
    node = NodeConfig(name="ip-10-0-0-1.ec2.internal", provider_id="aws:///z/i-1", zone="z", cpu_milli=2000,
                      internal_ip="127.0.1.1", taints=[{"key": "k", "effect": "NoSchedule"}], labels={"l": "v"})
    env = agent_env(node, api_url="https://a", ca_file=tmp_path / "ca", bootstrap_token="b", instance_id="i-1",
                    state_dir=tmp_path, cluster_name="c", registry_mirrors="ecr=127.0.0.1:5000",
                    aws={"AWS_ENDPOINT_URL": "http://moto"})
    config = from_env(env)
    assert config.node.name == node.name and config.instance_id == "i-1" and config.bootstrap_token == "b"
    assert config.node.taints == [{"key": "k", "effect": "NoSchedule"}] and config.host_port_address == "127.0.1.1"
    assert config.node.allocatable() == node.allocatable()


def test_instance_facts_come_from_imdsv2() -> None:
    import http.server
    import threading

    from skiff_agent import imds

    facts = {"instance-id": "i-0abc", "placement/availability-zone": "eu-west-1b", "placement/region": "eu-west-1",
             "instance-type": "m5.large", "local-ipv4": "10.1.2.3", "local-hostname": "ip-10-1-2-3.ec2.internal"}
    seen: list[str] = []

    class IMDS(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
            assert self.headers["X-aws-ec2-metadata-token-ttl-seconds"]
            self._answer("session-token")

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("X-aws-ec2-metadata-token", ""))
            key = self.path.removeprefix("/latest/meta-data/")
            if key in facts:
                self._answer(facts[key])
            else:
                self.send_error(404)

        def _answer(self, text: str) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), IMDS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        got = imds.read(url)
        config = from_env({"SKIFF_API_URL": "https://api", "SKIFF_BOOTSTRAP_TOKEN": "b", "SKIFF_IMDS_URL": url,
                           "SKIFF_STATE_DIR": "/nonexistent"})
    finally:
        server.shutdown()
    assert got.provider_id == "aws:///eu-west-1b/i-0abc" and got.region == "eu-west-1"
    assert set(seen) == {"session-token"}, "every read carries the IMDSv2 session token"
    assert config.node.name == "ip-10-1-2-3.ec2.internal" and config.instance_id == "i-0abc"
    assert config.node.instance_type == "m5.large" and config.node.internal_ip == "10.1.2.3"
    assert config.node.node_labels()["topology.kubernetes.io/zone"] == "eu-west-1b"


def test_transitions_are_computed_from_what_the_worker_wrote_not_the_lagging_api_copy() -> None:
    from skiff_agent.podworker import PodWorker

    worker = PodWorker.__new__(PodWorker)
    worker._reported = {"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"},
                                       {"type": "Ready", "status": "True", "lastTransitionTime": "T5"}]}
    lagging = {"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"},
                              {"type": "Ready", "status": "False", "lastTransitionTime": "T1"},
                              {"type": "example.com/gate", "status": "True", "lastTransitionTime": "T2"}]}
    previous = {c["type"]: c for c in worker._previous_conditions(lagging)}
    assert previous["Ready"]["lastTransitionTime"] == "T5", "our own last write wins over the API's older copy"
    assert previous["example.com/gate"]["lastTransitionTime"] == "T2", "others' conditions come from the API"
    again = conditions(list(previous.values()), sandbox_ready=True, initialized=True, containers_ready=True,
                       pod_phase="Running", now="T9")
    assert {c["type"]: c["lastTransitionTime"] for c in again}["Ready"] == "T5", "no transition, no new time"


def test_config_map_volumes_project_keys_items_and_modes(tmp_path: Path) -> None:
    from skiff_agent.configvolumes import VolumeError, project

    cm = {"data": {"app.conf": "a=1", "other": "x"}}
    project(tmp_path / "v", "cfg", {"name": "c"}, cm)
    assert (tmp_path / "v" / "app.conf").read_text() == "a=1" and (tmp_path / "v" / "other").read_text() == "x"
    assert ((tmp_path / "v" / "app.conf").stat().st_mode & 0o777) == 0o644
    project(tmp_path / "v", "cfg", {"name": "c", "defaultMode": 0o600,
                                     "items": [{"key": "app.conf", "path": "conf/app.conf", "mode": 0o400}]}, cm)
    assert sorted(p.relative_to(tmp_path / "v").as_posix() for p in (tmp_path / "v").rglob("*")) == \
        ["conf", "conf/app.conf"], "keys no longer projected are removed"
    assert ((tmp_path / "v" / "conf" / "app.conf").stat().st_mode & 0o777) == 0o400
    with pytest.raises(VolumeError, match='configmap "c" not found'):
        project(tmp_path / "w", "cfg", {"name": "c"}, None)
    project(tmp_path / "w", "cfg", {"name": "c", "optional": True}, None)
    with pytest.raises(VolumeError, match="non-existent config key: nope"):
        project(tmp_path / "w", "cfg", {"name": "c", "items": [{"key": "nope", "path": "n"}]}, cm)
    with pytest.raises(VolumeError, match="may not contain"):
        project(tmp_path / "w", "cfg", {"name": "c", "items": [{"key": "other", "path": "../escape"}]}, cm)


def test_a_local_machine_going_away_revokes_the_credential_its_agent_obtained(tmp_path: Path) -> None:
    from skiff.agentproc import AgentProcess
    from skiff.fleet import Fleet, Instance, _Member

    node = NodeConfig(name="n1")
    agent = AgentProcess(node, {"SKIFF_STATE_DIR": str(tmp_path)}, tmp_path / "log")
    (tmp_path / "n1.token").write_text("skiff.secret\n")
    assert agent.credential() == "skiff.secret"
    revoked: list[str] = []
    fleet = Fleet("https://api", tmp_path / "ca", ec2=object(), revoke_token=revoked.append, region="us-east-1")
    fleet._shutdown([_Member(Instance("i-1", "t3.large", "z", "", ""), agent, "", 0)], "a test")
    assert revoked == ["skiff.secret"]
