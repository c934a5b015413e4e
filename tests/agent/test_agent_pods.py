"""The node agent running real pods on Docker against a live cluster: shared network and volumes, init
containers, sidecars, restarts with back-off, OOM, image errors, probes, deletion with a grace period."""

from __future__ import annotations

import time
import urllib.request
import uuid
from typing import Any

from tests.agent.conftest import AgentNode
from tests.waiting import wait_until

BUSYBOX = "skiff-test/busybox:1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def statuses(pod: dict[str, Any], key: str = "containerStatuses") -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in (pod.get("status") or {}).get(key) or []}


def condition(pod: dict[str, Any], kind: str) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return str(c["status"])
    return ""


def ready_pod(node: AgentNode, name: str) -> dict[str, Any] | None:
    pod = node.pod(name)
    return pod if condition(pod, "Ready") == "True" else None


def events(node: AgentNode, pod: str) -> list[dict[str, Any]]:
    body = node.kubectl_json("get", "events", "--field-selector", f"involvedObject.name={pod}")
    return list(body.get("items") or [])


def delete(node: AgentNode, name: str) -> None:
    node.live.kubectl("delete", "pod", name, "--wait=false", check=False)


def test_containers_share_localhost_and_an_empty_dir_after_an_init_container(agent_node: AgentNode,
                                                                              docker_client: Any) -> None:
    name = unique("shared")
    agent_node.live.kubectl("create", "configmap", f"{name}-cfg", "--from-literal=greeting=hello")
    agent_node.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "initContainers": [{"name": "init", "image": BUSYBOX, "command": ["sh", "-c", "echo init > /data/init"],
                                "volumeMounts": [{"name": "shared", "mountPath": "/data"}]}],
            "containers": [
                {"name": "web", "image": BUSYBOX, "command": ["httpd", "-f", "-p", "8080", "-h", "/data"],
                 "ports": [{"containerPort": 8080, "hostPort": 18081}],
                 "volumeMounts": [{"name": "shared", "mountPath": "/data"}]},
                {"name": "writer", "image": BUSYBOX,
                 "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": f"{name}-cfg",
                                                                                "key": "greeting"}}},
                         {"name": "MSG", "value": "$(GREETING) from $(POD)"}],
                 "command": ["sh", "-c", 'echo "$MSG $IP $(cat /data/init)" > /data/index.html; '
                             "until wget -qO /data/via-localhost http://localhost:8080/init; do sleep 0.2; done; "
                             "sleep 3600"],
                 "volumeMounts": [{"name": "shared", "mountPath": "/data"}]},
            ]}})
    pod = wait_until("the pod Running and Ready", lambda: ready_pod(agent_node, name))
    status = pod["status"]
    assert status["phase"] == "Running"
    assert status["hostIP"] == agent_node.ip and status["podIP"]
    assert {c["type"] for c in status["conditions"]} >= {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
    init = statuses(pod, "initContainerStatuses")["init"]
    assert init["state"]["terminated"]["exitCode"] == 0 and init["state"]["terminated"]["reason"] == "Completed"
    for c in statuses(pod).values():
        assert c["ready"] and c["started"] and "running" in c["state"] and c["restartCount"] == 0
        assert c["containerID"].startswith("docker://") and c["imageID"]

    def page(path: str) -> str:
        with urllib.request.urlopen(f"http://{agent_node.ip}:18081/{path}", timeout=5) as r:  # noqa: S310
            return str(r.read().decode().strip())

    assert wait_until("the index page", lambda: page("index.html")) == f"hello from {name} {status['podIP']} init"
    assert wait_until("the writer reaching web over localhost", lambda: page("via-localhost")) == "init"
    # every container of the pod is in one network namespace: the sandbox's
    sandbox = [c for c in docker_client.containers.list(filters={"label": f"io.skiff.pod.name={name}"})
               if c.labels["io.skiff.container.kind"] == "sandbox"]
    assert len(sandbox) == 1
    for c in docker_client.containers.list(all=True, filters={"label": f"io.skiff.pod.name={name}"}):
        if c.labels["io.skiff.container.kind"] != "sandbox":
            assert c.attrs["HostConfig"]["NetworkMode"] == f"container:{sandbox[0].id}"
    reasons = [e["reason"] for e in events(agent_node, name)]
    assert {"Pulled", "Created", "Started"} <= set(reasons)
    delete(agent_node, name)


def test_a_sidecar_starts_first_and_stays_up(agent_node: AgentNode) -> None:
    name = unique("sidecar")
    agent_node.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "initContainers": [{"name": "proxy", "image": BUSYBOX, "restartPolicy": "Always",
                                     "command": ["sh", "-c", "echo up > /tmp/up; httpd -f -p 9000 -h /tmp"],
                                     "startupProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1}}],
                 "containers": [{"name": "app", "image": BUSYBOX,
                                 "command": ["sh", "-c", "wget -qO- http://localhost:9000/up && sleep 3600"]}]}})
    pod = wait_until("the pod Ready", lambda: ready_pod(agent_node, name))
    proxy = statuses(pod, "initContainerStatuses")["proxy"]
    assert "running" in proxy["state"] and proxy["started"] and proxy["ready"]
    app = statuses(pod)["app"]
    assert "running" in app["state"] and app["restartCount"] == 0, app  # the sidecar answered on its first try
    assert proxy["state"]["running"]["startedAt"] <= app["state"]["running"]["startedAt"]
    delete(agent_node, name)


def test_a_crashing_container_restarts_with_back_off_and_oom_is_reported(agent_node: AgentNode) -> None:
    name = unique("crash")
    agent_node.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [
            {"name": "crash", "image": BUSYBOX, "command": ["sh", "-c", "echo boom; exit 3"]},
            {"name": "hog", "image": BUSYBOX, "command": ["sh", "-c", 'x=a; while true; do x="$x$x"; done'],
             "resources": {"limits": {"memory": "16Mi"}}}]}})
    seen_backoff: set[str] = set()

    def restarted_thrice() -> Any:
        pod = agent_node.pod(name)
        st = statuses(pod)
        for c in st.values():
            if c["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff":
                seen_backoff.add(c["name"])
        return pod if all(c["restartCount"] >= 3 for c in st.values()) and len(st) == 2 else None

    pod = wait_until("restartCount 3 on both containers", restarted_thrice, timeout=90)
    st = statuses(pod)
    assert st["crash"]["lastState"]["terminated"]["exitCode"] == 3
    assert st["crash"]["lastState"]["terminated"]["reason"] == "Error"
    assert st["hog"]["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert st["hog"]["lastState"]["terminated"]["exitCode"] == 137
    assert seen_backoff == {"crash", "hog"}, "the restarts waited in CrashLoopBackOff"
    assert pod["status"]["phase"] == "Running"  # restartPolicy Always: restarting, not finished
    assert "BackOff" in {e["reason"] for e in events(agent_node, name)}
    delete(agent_node, name)


def test_restart_policies_end_pods_succeeded_or_failed(agent_node: AgentNode) -> None:
    ok, failed, retried = unique("never-ok"), unique("never-fail"), unique("onfailure")
    for name, script, policy in ((ok, "exit 0", "Never"), (failed, "exit 1", "Never"),
                                 (retried, "test -f /tmp/x && exit 0; touch /tmp/x; exit 1", "OnFailure")):
        agent_node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                          "spec": {"restartPolicy": policy, "terminationGracePeriodSeconds": 0,
                                   "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", script]}]}})
    assert wait_until("Succeeded", lambda: agent_node.pod(ok)["status"].get("phase") == "Succeeded")
    assert wait_until("Failed", lambda: agent_node.pod(failed)["status"].get("phase") == "Failed")
    pod = agent_node.pod(failed)
    assert statuses(pod)["c"]["state"]["terminated"]["exitCode"] == 1 and statuses(pod)["c"]["restartCount"] == 0
    assert condition(pod, "Ready") == "False"
    # OnFailure: the container's file system is new on each attempt, so it fails every time and restarts
    assert wait_until("OnFailure restarts", lambda: statuses(agent_node.pod(retried)).get("c", {})
                      .get("restartCount", 0) >= 1)
    assert agent_node.pod(retried)["status"]["phase"] in ("Running", "Pending")
    for name in (ok, failed, retried):
        delete(agent_node, name)


def test_a_missing_image_backs_off_and_the_node_keeps_working(agent_node: AgentNode) -> None:
    bad, good = unique("badimage"), unique("good")
    agent_node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": bad},
                      "spec": {"terminationGracePeriodSeconds": 0,
                               "containers": [{"name": "c", "image": "skiff-test/does-not-exist:1"}]}})
    reasons: set[str] = set()

    def both_reasons() -> bool:
        waiting = statuses(agent_node.pod(bad)).get("c", {}).get("state", {}).get("waiting", {})
        if waiting.get("reason"):
            reasons.add(waiting["reason"])
        return {"ErrImagePull", "ImagePullBackOff"} <= reasons

    agent_node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": good},
                      "spec": {"terminationGracePeriodSeconds": 0,
                               "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}})
    wait_until("ErrImagePull then ImagePullBackOff", both_reasons, every=0.2)
    assert wait_until("the other pod running", lambda: agent_node.pod(good)["status"].get("phase") == "Running")
    assert agent_node.pod(bad)["status"]["phase"] == "Pending"
    msgs = [e["message"] for e in events(agent_node, bad) if e["reason"] == "Failed"]
    assert any("skiff-test/does-not-exist:1" in m for m in msgs), msgs
    delete(agent_node, bad)
    delete(agent_node, good)


def test_liveness_failure_restarts_and_readiness_flips_ready(agent_node: AgentNode) -> None:
    name = unique("probes")
    agent_node.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [
            {"name": "sick", "image": BUSYBOX, "command": ["sleep", "3600"],
             "livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/healthy"]}, "periodSeconds": 1,
                               "failureThreshold": 2}},
            {"name": "flappy", "image": BUSYBOX, "ports": [{"containerPort": 8081, "name": "http"}],
             "command": ["sh", "-c", "mkdir -p /w; httpd -p 8081 -h /w; sleep 2; touch /w/ready; sleep 6; "
                         "rm /w/ready; sleep 3600"],
             "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1}}]}})
    seen: list[str] = []

    def ready_then_not() -> bool:
        pod = agent_node.pod(name)
        flappy = statuses(pod).get("flappy", {})
        value = "ready" if flappy.get("ready") else "not"
        if not seen or seen[-1] != value:
            seen.append(value)
        return seen[-3:] == ["not", "ready", "not"] and condition(pod, "Ready") == "False"

    wait_until("readiness to go ready and back", ready_then_not, timeout=60, every=0.3)
    assert wait_until("a liveness restart", lambda: statuses(agent_node.pod(name))["sick"]["restartCount"] >= 1)
    reasons = {e["reason"]: e["message"] for e in events(agent_node, name)}
    assert "Unhealthy" in reasons and "Killing" in reasons
    assert "failed liveness probe, will be restarted" in reasons["Killing"]
    delete(agent_node, name)


def test_deletion_waits_for_the_grace_period_then_removes_everything(agent_node: AgentNode,
                                                                     docker_client: Any) -> None:
    polite, stubborn = unique("polite"), unique("stubborn")
    agent_node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": polite},
                      "spec": {"terminationGracePeriodSeconds": 30, "volumes": [{"name": "v", "emptyDir": {}}],
                               "containers": [{"name": "c", "image": BUSYBOX,
                                               "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                                               "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do "
                                                           "sleep 0.1; done"]}]}})
    agent_node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": stubborn},
                      "spec": {"terminationGracePeriodSeconds": 3,
                               "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"]}]}})
    for name in (polite, stubborn):
        wait_until(f"{name} running", lambda n=name: agent_node.pod(n)["status"].get("phase") == "Running")
    started = time.monotonic()
    agent_node.live.kubectl("delete", "pod", polite, timeout=60)  # waits until the pod is gone
    polite_seconds = time.monotonic() - started
    started = time.monotonic()
    agent_node.live.kubectl("delete", "pod", stubborn, timeout=60)
    stubborn_seconds = time.monotonic() - started
    assert polite_seconds < 15, "a container that exits on SIGTERM does not wait out its grace period"
    assert stubborn_seconds >= 3, "SIGKILL only after the grace period"
    for name in (polite, stubborn):
        assert not docker_client.containers.list(all=True, filters={"label": f"io.skiff.pod.name={name}"})
    assert not [v for v in docker_client.volumes.list(filters={"label": f"io.skiff.node={agent_node.name}"})
                if polite in v.name]
    killing = [e for e in events(agent_node, polite) if e["reason"] == "Killing"]
    assert killing and "Stopping container c" in killing[0]["message"]


def test_the_node_registers_with_its_facts_and_renews_its_lease(agent_node: AgentNode) -> None:
    node = agent_node.kubectl_json("get", "node", agent_node.name)
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == agent_node.name
    assert {"type": "InternalIP", "address": agent_node.ip} in node["status"]["addresses"]
    assert node["status"]["allocatable"]["pods"] == "110"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("docker://")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready == {"MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}
    lease = agent_node.kubectl_json("get", "lease", "-n", "kube-node-lease", agent_node.name)
    first = lease["spec"]["renewTime"]
    assert wait_until("a lease renewal", lambda: agent_node.kubectl_json(
        "get", "lease", "-n", "kube-node-lease", agent_node.name)["spec"]["renewTime"] != first, timeout=25)


def test_a_config_map_volume_mounts_its_keys_and_follows_edits(agent_node: AgentNode) -> None:
    name = unique("cfgvol")
    agent_node.live.kubectl("create", "configmap", f"{name}-cfg", "--from-literal=app.conf=mode=one")
    agent_node.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "volumes": [{"name": "cfg", "configMap": {"name": f"{name}-cfg"}}],
                 "containers": [{"name": "c", "image": BUSYBOX,
                                 "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app", "readOnly": True}],
                                 "command": ["sh", "-c", "while true; do cat /etc/app/app.conf; echo; sleep 0.5; done"],
                                 "readinessProbe": {"exec": {"command": ["grep", "-q", "mode=two",
                                                                         "/etc/app/app.conf"]},
                                                    "periodSeconds": 1}}]}})
    wait_until("the pod Running", lambda: agent_node.pod(name)["status"].get("phase") == "Running")
    assert condition(agent_node.pod(name), "Ready") == "False", "the file says mode=one"
    agent_node.live.kubectl("patch", "configmap", f"{name}-cfg", "--type=merge", "-p",
                            '{"data": {"app.conf": "mode=two"}}')
    wait_until("the edit to reach the file (readiness passes)", lambda: ready_pod(agent_node, name), timeout=60)
    delete(agent_node, name)


def test_a_missing_config_map_holds_the_pod_with_failed_mount(agent_node: AgentNode) -> None:
    name = unique("nocfg")
    agent_node.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                      "spec": {"terminationGracePeriodSeconds": 0,
                               "volumes": [{"name": "cfg", "configMap": {"name": "does-not-exist"}}],
                               "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "3600"],
                                               "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}]}})
    failed = wait_until("a FailedMount event", lambda: [e for e in events(agent_node, name)
                                                       if e["reason"] == "FailedMount"])
    assert 'configmap "does-not-exist" not found' in failed[0]["message"]
    def reported() -> dict[str, Any] | None:
        pod = agent_node.pod(name)
        return pod if statuses(pod) else None

    pod = wait_until("the pod's status", reported)
    assert pod["status"].get("phase") == "Pending"
    assert statuses(pod)["c"]["state"]["waiting"]["reason"] == "ContainerCreating"
    delete(agent_node, name)

