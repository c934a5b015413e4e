"""Deployment controller: sync against a store fixture, asserting the writes it makes and the result.

In the manner of sample-controller's tests: objects are set up through the API as an admin, `sync`
runs with a fresh Client whose recorded actions are compared exactly, and the ReplicaSet controller
is simulated between steps by writing each ReplicaSet's status (`simulate_rs_controller`).
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.controllers import deployment
from chalicelib.controllers import rollout as ro
from chalicelib.controllers.client import Client
from tests.conftest import APIClient

Obj = dict[str, Any]
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
RS = "/apis/apps/v1/namespaces/default/replicasets"
PODS = "/api/v1/namespaces/default/pods"
EVENTS = "/api/v1/namespaces/default/events"


# --- helpers ---


def deploy_body(name: str = "web", replicas: int = 3, image: str = "nginx:1", *,
                strategy: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                 "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                          "template": {"metadata": {"labels": {"app": name}},
                                       "spec": {"containers": [{"name": "c", "image": image}]}},
                          **spec}}
    if strategy is not None:
        body["spec"]["strategy"] = strategy
    return body


def rolling(surge: Any, unavailable: Any) -> Obj:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}


def create(admin: APIClient, body: Obj) -> Obj:
    code, out = admin.post(DEPLOYS, body)
    assert code == 201, out
    return out


def get_deploy(admin: APIClient, name: str = "web") -> Obj:
    return admin.get(f"{DEPLOYS}/{name}")[1]


def replicasets(admin: APIClient) -> list[Obj]:
    """The ReplicaSets, oldest revision first."""
    items = admin.get(RS)[1]["items"]
    return sorted(items, key=lambda rs: int(rs["metadata"].get("annotations", {}).get(ro.REVISION, "0")))


def by_revision(admin: APIClient) -> dict[int, Obj]:
    return {int(rs["metadata"]["annotations"][ro.REVISION]): rs for rs in replicasets(admin)}


def sizes(admin: APIClient) -> dict[str, int]:
    return {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in replicasets(admin)}


def set_image(admin: APIClient, image: str, name: str = "web") -> None:
    code, out = admin.patch(f"{DEPLOYS}/{name}", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": image}]}}}}, content_type="application/strategic-merge-patch+json")
    assert code == 200, out


def simulate_rs_controller(admin: APIClient, unavailable: dict[str, int] | None = None) -> None:
    """What the ReplicaSet controller reports once it has acted: every pod exists, all available
    except `unavailable[name]` of that ReplicaSet's."""
    for rs in replicasets(admin):
        n = rs["spec"]["replicas"]
        ok = max(0, n - (unavailable or {}).get(rs["metadata"]["name"], 0))
        status = {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": ok, "availableReplicas": ok,
                  "observedGeneration": rs["metadata"]["generation"]}
        code, out = admin.put(f"{RS}/{rs['metadata']['name']}/status", {**rs, "status": status})
        assert code == 200, out


def actions(client: Client) -> list[str]:
    """The client's actions, with the generated part of event names dropped."""
    return [re.sub(r"^(create events default/[a-z0-9-]+)\.[0-9a-f]+$", r"\1", a) for a in client.action_strings()]


def run(name: str = "web", now: datetime | None = None) -> tuple[Client, float | None]:
    client = Client()
    after = deployment.sync(client, "default", name, now=now)
    return client, after


def scaling_events(admin: APIClient) -> list[str]:
    items = sorted(admin.get(EVENTS)[1]["items"], key=lambda e: e["metadata"]["name"])
    return [e["message"] for e in items if e["reason"] == "ScalingReplicaSet"]


def condition(d: Obj, kind: str) -> Obj:
    found = [c for c in d["status"].get("conditions", []) if c["type"] == kind]
    assert len(found) == 1, d["status"]
    return found[0]


def rollout_status(d: Obj) -> tuple[str, bool]:
    """kubectl rollout status's DeploymentStatusViewer, on the fields it reads."""
    st, spec = d.get("status", {}), d["spec"]
    if d["metadata"]["generation"] > st.get("observedGeneration", 0):
        return "Waiting for deployment spec update to be observed...", False
    for c in st.get("conditions", []):
        if c["type"] == "Progressing" and c["reason"] == "ProgressDeadlineExceeded":
            raise RuntimeError(f'deployment "{d["metadata"]["name"]}" exceeded its progress deadline')
    updated, replicas, available = (st.get(k, 0) for k in ("updatedReplicas", "replicas", "availableReplicas"))
    if spec.get("replicas") is not None and updated < spec["replicas"]:
        return f"{updated} out of {spec['replicas']} new replicas have been updated...", False
    if replicas > updated:
        return f"{replicas - updated} old replicas are pending termination...", False
    if available < updated:
        return f"{available} of {updated} updated replicas are available...", False
    return f'deployment "{d["metadata"]["name"]}" successfully rolled out', True


def roll_until_idle(admin: APIClient, *, max_total: int, min_available: int, steps: int = 30,
                    trace: list[list[int]] | None = None) -> int:
    """Alternate simulated ReplicaSet syncs and deployment syncs until a sync writes nothing.

    After every deployment sync, the pods that exist until the ReplicaSet controller next acts (per
    ReplicaSet the more of spec.replicas and status.replicas: a ReplicaSet just scaled down still has
    its pods) stay within `max_total`, the available ones (the available pods a ReplicaSet keeps when
    it shrinks) at least `min_available`, and a second sync straight after writes nothing. The sizes
    (oldest revision first) after each sync that wrote a ReplicaSet are appended to `trace`.
    Returns the number of syncs that wrote something.
    """
    for step in range(steps):
        simulate_rs_controller(admin)
        client, _ = run()
        rss = replicasets(admin)
        assert sum(max(rs["spec"]["replicas"], rs.get("status", {}).get("replicas", 0))
                   for rs in rss) <= max_total, sizes(admin)
        assert sum(min(rs["spec"]["replicas"], rs.get("status", {}).get("availableReplicas", 0))
                   for rs in rss) >= min_available, sizes(admin)
        if trace is not None and any(a.resource == "replicasets" for a in client.actions):
            trace.append([rs["spec"]["replicas"] for rs in rss])
        if not client.actions:
            return step
        again, _ = run()
        assert again.action_strings() == [], "a second sync with nothing new wrote something"
    raise AssertionError("the rollout did not settle")


def settle(admin: APIClient) -> None:
    """Sync and simulate until nothing changes (no invariant checks)."""
    roll_until_idle(admin, max_total=10**6, min_available=0)


# --- pure helpers ---


@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 3, (1, 0)),
    ("25%", "25%", 10, (3, 2)),
    ("15%", "15%", 10, (2, 1)),
    (0, 1, 4, (0, 1)),
    ("0%", "10%", 5, (0, 1)),  # both round to 0: unavailable becomes 1
    (2, "50%", 5, (2, 2)),
    ("1", "2", 5, (1, 2)),
])
def test_fenceposts_round_surge_up_and_unavailable_down(surge: Any, unavailable: Any, desired: int,
                                                        expected: tuple[int, int]) -> None:
    assert ro.resolve_fenceposts(surge, unavailable, desired) == expected


def test_hash_is_stable_differs_by_template_and_collision_and_uses_the_safe_alphabet() -> None:
    t1 = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}}
    t2 = copy.deepcopy(t1)
    t2["spec"]["containers"][0]["image"] = "b"
    h1 = ro.compute_hash(t1, None)
    assert h1 == ro.compute_hash(copy.deepcopy(t1), None)
    assert h1 == ro.compute_hash({**t1, "metadata": {"labels": {"app": "web"}, "annotations": {}}}, None)
    assert h1 != ro.compute_hash(t2, None)
    assert h1 != ro.compute_hash(t1, 1) != ro.compute_hash(t1, 2)
    assert set(h1) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_set_new_rs_annotations_keeps_revision_history() -> None:
    d = {"metadata": {"annotations": {"a": "1", ro.LAST_APPLIED: "{}", ro.REVISION: "9"}},
         "spec": {"replicas": 4, "strategy": rolling("25%", "25%")}}
    rs: Obj = {"metadata": {"annotations": {ro.REVISION: "2", ro.REVISION_HISTORY: "1"}}}
    assert ro.set_new_rs_annotations(d, rs, 5, exists=True)
    assert rs["metadata"]["annotations"] == {ro.REVISION: "5", ro.REVISION_HISTORY: "1,2", "a": "1"}
    assert not ro.set_new_rs_annotations(d, rs, 5, exists=True)
    fresh: Obj = {"metadata": {}}
    ro.set_new_rs_annotations(d, fresh, 1, exists=False)
    assert fresh["metadata"]["annotations"] == {"a": "1", ro.REVISION: "1", ro.DESIRED_REPLICAS: "4",
                                                ro.MAX_REPLICAS: "5"}


# --- first sync, idempotence, status ---


def test_first_sync_creates_the_replicaset_and_a_second_does_nothing(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=3))
    client, after = run()
    [rs] = replicasets(admin)
    name = rs["metadata"]["name"]
    pod_hash = rs["metadata"]["labels"][ro.HASH_LABEL]
    assert name == f"web-{pod_hash}" and re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]+", pod_hash)
    assert actions(client) == [f"create replicasets default/{name}", "create events default/web",
                               "update deployments default/web", "update-status deployments default/web"]
    d = get_deploy(admin)
    assert rs["spec"]["replicas"] == 3
    assert rs["metadata"]["labels"] == {"app": "web", ro.HASH_LABEL: pod_hash}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", ro.HASH_LABEL: pod_hash}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", ro.HASH_LABEL: pod_hash}
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                  "uid": d["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]
    assert rs["metadata"]["annotations"] == {ro.REVISION: "1", ro.DESIRED_REPLICAS: "3", ro.MAX_REPLICAS: "4"}
    assert d["metadata"]["annotations"] == {ro.REVISION: "1"}
    assert scaling_events(admin) == [f"Scaled up replica set {name} from 0 to 3"]
    [event] = [e for e in admin.get(EVENTS)[1]["items"] if e["reason"] == "ScalingReplicaSet"]
    assert event["source"] == {"component": "deployment-controller"}
    assert event["involvedObject"]["kind"] == "Deployment" and event["involvedObject"]["name"] == "web"
    st = d["status"]
    assert {k: v for k, v in st.items() if k != "conditions"} == {"observedGeneration": 1, "unavailableReplicas": 3}
    progressing, available = st["conditions"]
    assert (progressing["type"], progressing["status"], progressing["reason"], progressing["message"]) == (
        "Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{name}"')
    assert (available["type"], available["status"], available["reason"], available["message"]) == (
        "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    assert after is not None and 590 < after <= 601  # a look at the progress deadline
    assert rollout_status(d) == ("0 out of 3 new replicas have been updated...", False)

    again, _ = run()
    assert again.action_strings() == []


def test_status_once_replicas_are_available_is_what_rollout_status_wants(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=3))
    run()
    simulate_rs_controller(admin)
    client, after = run()
    assert actions(client) == ["update-status deployments default/web"]
    assert after is None
    d = get_deploy(admin)
    [rs] = replicasets(admin)
    st = d["status"]
    assert {k: v for k, v in st.items() if k != "conditions"} == {
        "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
    available, progressing = st["conditions"]
    assert (available["type"], available["status"], available["reason"], available["message"]) == (
        "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    assert (progressing["type"], progressing["status"], progressing["reason"], progressing["message"]) == (
        "Progressing", "True", "NewReplicaSetAvailable",
        f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.')
    for cond in st["conditions"]:
        assert set(cond) == {"type", "status", "lastUpdateTime", "lastTransitionTime", "reason", "message"}
    assert rollout_status(d) == ('deployment "web" successfully rolled out', True)
    again, _ = run()
    assert again.action_strings() == []


def test_deployment_annotations_are_copied_to_the_replicaset_but_not_kubectls(admin: APIClient) -> None:
    body = deploy_body()
    body["metadata"]["annotations"] = {"team": "blue", ro.LAST_APPLIED: "{}", "kubernetes.io/change-cause": "v1"}
    create(admin, body)
    run()
    [rs] = replicasets(admin)
    notes = rs["metadata"]["annotations"]
    assert notes["team"] == "blue" and notes["kubernetes.io/change-cause"] == "v1" and ro.LAST_APPLIED not in notes
    admin.patch(f"{DEPLOYS}/web", {"metadata": {"annotations": {"team": "green"}}})
    client, _ = run()
    assert actions(client) == [f"update replicasets default/{rs['metadata']['name']}"]
    assert replicasets(admin)[0]["metadata"]["annotations"]["team"] == "green"


def test_scaling_a_settled_deployment_scales_its_replicaset(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=3))
    settle(admin)
    [rs] = replicasets(admin)
    admin.patch(f"{DEPLOYS}/web", {"spec": {"replicas": 5}})
    client, _ = run()
    name = rs["metadata"]["name"]
    assert actions(client) == [f"update replicasets default/{name}", "create events default/web",
                               "update-status deployments default/web"]
    [rs] = replicasets(admin)
    assert rs["spec"]["replicas"] == 5
    assert rs["metadata"]["annotations"][ro.DESIRED_REPLICAS] == "5"
    assert rs["metadata"]["annotations"][ro.MAX_REPLICAS] == "7"
    assert scaling_events(admin)[-1] == f"Scaled up replica set {name} from 3 to 5"
    d = get_deploy(admin)
    assert d["status"]["observedGeneration"] == 2
    assert rollout_status(d)[1] is False
    settle(admin)
    assert rollout_status(get_deploy(admin))[1] is True


# --- RollingUpdate ---


def test_image_change_rolls_out_within_surge_and_unavailability(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=4, strategy=rolling("25%", "25%")))
    settle(admin)
    set_image(admin, "nginx:2")
    first, _ = run()
    revs = by_revision(admin)
    old, new = revs[1]["metadata"]["name"], revs[2]["metadata"]["name"]
    # Upstream's steps, run until none applies: surge one new pod, let one old one go (one may be
    # unavailable). The new ReplicaSet does not grow into the room that made yet: the surge bound
    # counts the old pod until the ReplicaSet controller has deleted it (status.replicas still 4).
    assert actions(first) == [f"create replicasets default/{new}", "create events default/web",
                              "update deployments default/web", f"update replicasets default/{old}",
                              "create events default/web", "update-status deployments default/web"]
    assert sizes(admin) == {old: 3, new: 1}
    assert get_deploy(admin)["metadata"]["annotations"][ro.REVISION] == "2"
    assert revs[2]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert revs[2]["metadata"]["annotations"] == {ro.REVISION: "2", ro.DESIRED_REPLICAS: "4", ro.MAX_REPLICAS: "5"}
    simulate_rs_controller(admin)
    trace: list[list[int]] = []
    roll_until_idle(admin, max_total=5, min_available=3, trace=trace)
    assert sizes(admin) == {old: 0, new: 4}
    # Each sync after the ReplicaSet controller removed an old pod: one new pod fills the room (5 pods
    # exist again), and one old one may go, as the new unavailable one leaves 3 of 4 available.
    assert trace == [[2, 2], [1, 3], [0, 4]]
    assert scaling_events(admin) == [
        f"Scaled up replica set {old} from 0 to 4",
        f"Scaled up replica set {new} from 0 to 1", f"Scaled down replica set {old} from 4 to 3",
        f"Scaled up replica set {new} from 1 to 2", f"Scaled down replica set {old} from 3 to 2",
        f"Scaled up replica set {new} from 2 to 3", f"Scaled down replica set {old} from 2 to 1",
        f"Scaled up replica set {new} from 3 to 4", f"Scaled down replica set {old} from 1 to 0"]
    d = get_deploy(admin)
    assert rollout_status(d) == ('deployment "web" successfully rolled out', True)
    assert condition(d, "Progressing")["message"] == f'ReplicaSet "{new}" has successfully progressed.'
    assert d["status"]["observedGeneration"] == 2 and d["status"]["updatedReplicas"] == 4


def test_rollout_status_mid_rollout_reports_progressing(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=4, strategy=rolling("25%", "25%")))
    settle(admin)
    set_image(admin, "nginx:2")
    run()  # old 3, new 1 (the old pod that goes is counted until it is gone)
    revs = by_revision(admin)
    old, new = revs[1]["metadata"]["name"], revs[2]["metadata"]["name"]
    assert sizes(admin) == {old: 3, new: 1}
    simulate_rs_controller(admin, unavailable={new: 1})
    run()  # the old pod is gone, so a second new one may come; no new one is available, so no more
    #        old ones may go (3 of 4 must stay available)
    d = get_deploy(admin)
    assert sizes(admin) == {old: 3, new: 2}
    assert rollout_status(d) == ("1 out of 4 new replicas have been updated...", False)
    progressing = condition(d, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "True", "ReplicaSetUpdated", f'ReplicaSet "{new}" is progressing.')
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (4, 1, 3, 3)
    assert st["unavailableReplicas"] == 2  # 5 pods wanted by the ReplicaSets, 3 available
    simulate_rs_controller(admin)
    run()  # both new pods are available: 2 old ones may go (5 available, 3 needed); 5 pods still exist
    assert sizes(admin) == {old: 1, new: 2}
    assert rollout_status(get_deploy(admin)) == ("2 out of 4 new replicas have been updated...", False)
    again, _ = run()
    assert again.action_strings() == []


def test_max_surge_zero_max_unavailable_one_replaces_one_at_a_time(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=3, strategy=rolling(0, 1)))
    settle(admin)
    set_image(admin, "nginx:2")
    first, _ = run()
    revs = by_revision(admin)
    old, new = revs[1]["metadata"]["name"], revs[2]["metadata"]["name"]
    # No surge: the new ReplicaSet starts empty and one old replica goes. A new one takes its place
    # only once it is gone: the surge bound counts the old pod while it exists (status.replicas 3).
    assert sizes(admin) == {old: 2, new: 0}
    assert actions(first) == [f"create replicasets default/{new}", "update deployments default/web",
                              f"update replicasets default/{old}", "create events default/web",
                              "update-status deployments default/web"]
    simulate_rs_controller(admin)
    trace: list[list[int]] = []
    roll_until_idle(admin, max_total=3, min_available=2, trace=trace)
    # One at a time: a new pod comes into the room an old one left; once it is available, the next
    # old one goes.
    assert trace == [[2, 1], [1, 1], [1, 2], [0, 2], [0, 3]]
    assert sizes(admin) == {old: 0, new: 3}
    assert rollout_status(get_deploy(admin))[1] is True


def test_percentages_round_surge_up_and_unavailable_down(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=10, strategy=rolling("15%", "15%")))
    settle(admin)
    [rs] = replicasets(admin)
    assert rs["metadata"]["annotations"][ro.MAX_REPLICAS] == "12"  # 10 + ceil(1.5)
    set_image(admin, "nginx:2")
    run()
    revs = by_revision(admin)
    # Surge 2 new pods; keep 10 - floor(1.5) = 9 available, so one old pod may go. No new one takes
    # its place before it is gone: the surge bound counts the pods that exist (10 old + 2 new).
    assert sizes(admin) == {revs[1]["metadata"]["name"]: 9, revs[2]["metadata"]["name"]: 2}
    simulate_rs_controller(admin)
    trace: list[list[int]] = []
    roll_until_idle(admin, max_total=12, min_available=9, trace=trace)
    # Every step reaches both bounds: 12 pods exist (old status.replicas + new) and 9 are available.
    assert trace == [[7, 3], [6, 5], [4, 6], [3, 8], [1, 9], [0, 10]]
    assert rollout_status(get_deploy(admin))[1] is True


def test_unhealthy_old_replicas_are_cleaned_up_first(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=4, strategy=rolling(1, 1)))
    settle(admin)
    [old] = replicasets(admin)
    old_name = old["metadata"]["name"]
    simulate_rs_controller(admin, unavailable={old_name: 2})  # 2 of 4 old pods went bad
    set_image(admin, "nginx:2")
    run()
    new_name = by_revision(admin)[2]["metadata"]["name"]
    # 5 pods allowed, 3 must stay available, the new one is not yet: 5 - 3 - 1 = 1 may go. Only 2 are
    # available, so no healthy one may, but an unhealthy one costs no availability. (The new
    # ReplicaSet does not grow into its room before it is gone: the surge bound counts existing pods.)
    assert scaling_events(admin)[-2:] == [f"Scaled up replica set {new_name} from 0 to 1",
                                          f"Scaled down replica set {old_name} from 4 to 3"]
    assert sizes(admin) == {old_name: 3, new_name: 1}
    # The ReplicaSet controller deletes an unhealthy pod first, so one of the 3 old ones is still bad;
    # the new pod is up. Again 5 - 3 - 1 = 1 may go once a second new one comes, and 2 old + 1 new
    # available is exactly 3, so again it is the unhealthy one.
    simulate_rs_controller(admin, unavailable={old_name: 1})
    run()
    assert scaling_events(admin)[-2:] == [f"Scaled up replica set {new_name} from 1 to 2",
                                          f"Scaled down replica set {old_name} from 3 to 2"]
    assert sizes(admin) == {old_name: 2, new_name: 2}
    simulate_rs_controller(admin)
    roll_until_idle(admin, max_total=5, min_available=3)
    assert sizes(admin) == {old_name: 0, new_name: 4}


def test_surge_counts_old_pods_until_the_replicaset_controller_has_deleted_them(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=5, strategy=rolling(1, 1)))
    settle(admin)
    set_image(admin, "nginx:2")
    run()
    revs = by_revision(admin)
    old, new = revs[1]["metadata"]["name"], revs[2]["metadata"]["name"]
    assert sizes(admin) == {old: 4, new: 1}
    assert revs[1]["status"]["replicas"] == 5  # the old ReplicaSet has not deleted its pod yet
    # Only the new ReplicaSet's controller has acted: its pod exists (not yet available).
    rs = revs[2]
    code, out = admin.put(f"{RS}/{new}/status", {**rs, "status": {
        "replicas": 1, "fullyLabeledReplicas": 1, "observedGeneration": rs["metadata"]["generation"]}})
    assert code == 200, out
    client, _ = run()
    # The specs add up to 4 + 1 = 5 < 6, but 5 old pods + 1 new exist: 6 = replicas + maxSurge, so the
    # new ReplicaSet stays at 1 (counting specs only, it would go to 2 and 7 pods would run).
    assert actions(client) == ["update-status deployments default/web"]  # updatedReplicas 1
    assert sizes(admin) == {old: 4, new: 1}
    again, _ = run()
    assert again.action_strings() == []
    # Once the old ReplicaSet reports its pod gone, the room is there.
    simulate_rs_controller(admin, unavailable={new: 1})
    client, _ = run()
    assert actions(client) == [f"update replicasets default/{new}", "create events default/web",
                               "update-status deployments default/web"]
    assert sizes(admin) == {old: 4, new: 2}


# --- Recreate ---


def make_pod(admin: APIClient, owner: Obj, name: str) -> None:
    labels = owner["spec"]["template"]["metadata"]["labels"]
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner["metadata"]["name"],
                 "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}
    code, out = admin.post(PODS, body)
    assert code == 201, out


def test_recreate_scales_old_to_zero_and_waits_for_old_pods_before_the_new(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=3, strategy={"type": "Recreate"}))
    settle(admin)
    [old] = replicasets(admin)
    old_name = old["metadata"]["name"]
    make_pod(admin, old, "web-old-pod")
    set_image(admin, "nginx:2")

    client, _ = run()
    assert actions(client) == [f"update replicasets default/{old_name}", "create events default/web",
                               "update-status deployments default/web"]
    assert sizes(admin) == {old_name: 0}
    assert scaling_events(admin)[-1] == f"Scaled down replica set {old_name} from 3 to 0"

    client, _ = run()  # the old ReplicaSet still reports 3 replicas
    assert client.action_strings() == []
    simulate_rs_controller(admin)  # it reports 0, but one old pod is still running
    client, _ = run()
    assert [a for a in actions(client) if a.startswith("create replicasets")] == []
    assert len(replicasets(admin)) == 1

    admin.patch(f"{PODS}/web-old-pod/status", {"status": {"phase": "Succeeded"}})
    client, _ = run()
    new_name = by_revision(admin)[2]["metadata"]["name"]
    assert actions(client) == [f"create replicasets default/{new_name}", "create events default/web",
                               "update deployments default/web", "update-status deployments default/web"]
    assert sizes(admin) == {old_name: 0, new_name: 3}
    assert scaling_events(admin)[-1] == f"Scaled up replica set {new_name} from 0 to 3"
    settle(admin)
    d = get_deploy(admin)
    assert rollout_status(d)[1] is True
    assert condition(d, "Available")["status"] == "True"


# --- pause, resume, undo, restart, history ---


def test_paused_deployment_scales_but_does_not_roll_out_until_resumed(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=3))
    settle(admin)
    [old] = replicasets(admin)
    old_name = old["metadata"]["name"]
    admin.patch(f"{DEPLOYS}/web", {"spec": {"paused": True}})
    client, _ = run()
    assert actions(client) == ["update-status deployments default/web"]
    progressing = condition(get_deploy(admin), "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "Unknown", "DeploymentPaused", "Deployment is paused")

    set_image(admin, "nginx:2")
    client, _ = run()
    assert actions(client) == ["update-status deployments default/web"]  # observedGeneration only
    assert len(replicasets(admin)) == 1
    admin.patch(f"{DEPLOYS}/web", {"spec": {"replicas": 4}})
    client, _ = run()
    assert actions(client) == [f"update replicasets default/{old_name}", "create events default/web",
                               "update-status deployments default/web"]
    assert sizes(admin) == {old_name: 4}
    again, _ = run()
    assert again.action_strings() == []

    simulate_rs_controller(admin)
    run()
    admin.patch(f"{DEPLOYS}/web", {"spec": {"paused": False}})
    client, _ = run()
    new_name = by_revision(admin)[2]["metadata"]["name"]
    assert actions(client)[0] == f"create replicasets default/{new_name}"
    progressing = condition(get_deploy(admin), "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetCreated")
    simulate_rs_controller(admin)
    roll_until_idle(admin, max_total=5, min_available=3)
    assert sizes(admin) == {old_name: 0, new_name: 4}


def undo(admin: APIClient, revision: int) -> None:
    """`kubectl rollout undo --to-revision`: done by kubectl, which copies that ReplicaSet's template
    (without the hash label) and annotations onto the Deployment with a JSON patch."""
    rs = by_revision(admin)[revision]
    d = get_deploy(admin)
    template = copy.deepcopy(rs["spec"]["template"])
    del template["metadata"]["labels"][ro.HASH_LABEL]
    notes = {k: v for k, v in d["metadata"].get("annotations", {}).items() if k in ro.ANNOTATIONS_NOT_COPIED}
    notes.update({k: v for k, v in rs["metadata"].get("annotations", {}).items()
                  if k not in ro.ANNOTATIONS_NOT_COPIED})
    code, out = admin.patch(f"{DEPLOYS}/web", [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": notes}],
        content_type="application/json-patch+json")
    assert code == 200, out


def test_undo_reuses_the_old_replicaset_which_gets_the_next_revision(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=4))
    settle(admin)
    set_image(admin, "nginx:2")
    settle(admin)
    revs = by_revision(admin)
    first, second = revs[1]["metadata"]["name"], revs[2]["metadata"]["name"]
    undo(admin, 1)
    client, _ = run()
    # Revision 3 on the old ReplicaSet, then a rolling step back to it: one pod surges, one of the
    # other goes; the surge bound counts that pod until it is gone, so the first grows no further yet.
    assert actions(client) == [f"update replicasets default/{first}", "update deployments default/web",
                               f"update replicasets default/{first}", "create events default/web",
                               f"update replicasets default/{second}", "create events default/web",
                               "update-status deployments default/web"]
    assert sizes(admin) == {second: 3, first: 1}
    assert len(replicasets(admin)) == 2  # no new ReplicaSet
    revs = by_revision(admin)
    assert revs[3]["metadata"]["name"] == first
    assert revs[3]["metadata"]["annotations"][ro.REVISION_HISTORY] == "1"
    assert get_deploy(admin)["metadata"]["annotations"][ro.REVISION] == "3"
    simulate_rs_controller(admin)
    roll_until_idle(admin, max_total=5, min_available=3)
    assert sizes(admin) == {second: 0, first: 4}
    # `kubectl rollout history` lists the revisions of the ReplicaSets.
    assert sorted(by_revision(admin)) == [2, 3]
    assert rollout_status(get_deploy(admin))[1] is True


def test_rollout_restart_makes_a_new_replicaset(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=2))
    settle(admin)
    stamp = "2026-01-02T03:04:05Z"
    admin.patch(f"{DEPLOYS}/web", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": stamp}}}}}, content_type="application/strategic-merge-patch+json")
    run()
    revs = by_revision(admin)
    assert revs[2]["spec"]["template"]["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": stamp}
    assert revs[2]["spec"]["template"]["spec"] == revs[1]["spec"]["template"]["spec"]
    assert revs[1]["metadata"]["labels"][ro.HASH_LABEL] != revs[2]["metadata"]["labels"][ro.HASH_LABEL]
    simulate_rs_controller(admin)
    settle(admin)
    assert [rs["spec"]["replicas"] for rs in replicasets(admin)] == [0, 2]


def test_revision_history_limit_deletes_the_oldest_empty_replicasets(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=2, revisionHistoryLimit=1))
    settle(admin)
    set_image(admin, "nginx:2")
    settle(admin)
    assert sorted(by_revision(admin)) == [1, 2]
    oldest = by_revision(admin)[1]["metadata"]["name"]
    set_image(admin, "nginx:3")
    run()
    simulate_rs_controller(admin)
    deleted = []
    for _ in range(20):
        client, _ = run()
        deleted += [a for a in client.action_strings() if a.startswith("delete")]
        if not client.actions:
            break
        simulate_rs_controller(admin)
    assert deleted == [f"delete replicasets default/{oldest}"]
    assert sorted(by_revision(admin)) == [2, 3]


# --- scaling mid-rollout, progress deadline ---


def test_scaling_mid_rollout_is_proportional(admin: APIClient) -> None:
    # The example of the Kubernetes documentation: 10 replicas, maxSurge 3, maxUnavailable 2,
    # a rollout stuck on a bad image, then scaled to 15.
    create(admin, deploy_body(replicas=10, strategy=rolling(3, 2)))
    settle(admin)
    set_image(admin, "nginx:bad")
    run()
    revs = by_revision(admin)
    old, new = revs[1]["metadata"]["name"], revs[2]["metadata"]["name"]
    for _ in range(3):
        simulate_rs_controller(admin, unavailable={new: 100})
        run()
    assert sizes(admin) == {old: 8, new: 5}
    simulate_rs_controller(admin, unavailable={new: 100})
    run()
    admin.patch(f"{DEPLOYS}/web", {"spec": {"replicas": 15}})
    client, _ = run()
    assert actions(client) == [f"update replicasets default/{old}", "create events default/web",
                               f"update replicasets default/{new}", "create events default/web",
                               "update-status deployments default/web"]
    assert sizes(admin) == {old: 11, new: 7}  # 3 more old, 2 more new: 18 = 15 + maxSurge
    for rs in replicasets(admin):
        assert rs["metadata"]["annotations"][ro.DESIRED_REPLICAS] == "15"
        assert rs["metadata"]["annotations"][ro.MAX_REPLICAS] == "18"
    assert scaling_events(admin)[-2:] == [f"Scaled up replica set {old} from 8 to 11",
                                          f"Scaled up replica set {new} from 5 to 7"]
    simulate_rs_controller(admin)  # the image is fixed upstream of us: the new pods come up
    roll_until_idle(admin, max_total=18, min_available=0)
    assert sizes(admin) == {old: 0, new: 15}


def test_no_progress_within_the_deadline_is_progress_deadline_exceeded(admin: APIClient) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)
    create(admin, deploy_body(replicas=2, progressDeadlineSeconds=60))
    run(now=t0)
    name = replicasets(admin)[0]["metadata"]["name"]
    simulate_rs_controller(admin, unavailable={name: 2})  # pods exist but never become available

    client, after = run(now=t0 + timedelta(seconds=10))
    assert actions(client) == ["update-status deployments default/web"]
    progressing = condition(get_deploy(admin), "Progressing")
    assert (progressing["reason"], progressing["lastUpdateTime"], progressing["lastTransitionTime"]) == (
        "ReplicaSetUpdated", ro.format_time(t0 + timedelta(seconds=10)), ro.format_time(t0))
    assert after == 61.0

    client, after = run(now=t0 + timedelta(seconds=30))
    assert client.action_strings() == [] and after == 41.0

    client, after = run(now=t0 + timedelta(seconds=71))
    assert actions(client) == ["update-status deployments default/web"]
    assert after is None
    d = get_deploy(admin)
    progressing = condition(d, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "False", "ProgressDeadlineExceeded", f'ReplicaSet "{name}" has timed out progressing.')
    with pytest.raises(RuntimeError, match="exceeded its progress deadline"):
        rollout_status(d)
    client, _ = run(now=t0 + timedelta(seconds=200))
    assert client.action_strings() == []

    simulate_rs_controller(admin)  # pods finally become available: progress resumes and completes
    run(now=t0 + timedelta(seconds=300))
    progressing = condition(get_deploy(admin), "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")


def test_min_ready_seconds_asks_for_a_resync(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=1, minReadySeconds=5))
    run()
    [rs] = replicasets(admin)
    assert rs["spec"]["minReadySeconds"] == 5
    rs["status"] = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 0, "observedGeneration": 1}
    admin.put(f"{RS}/{rs['metadata']['name']}/status", rs)
    _, after = run()
    assert after == 5.0


# --- ownership, collisions, deletion, conflicts ---


def orphan_rs(name: str, labels: dict[str, str], image: str = "nginx:1", replicas: int = 3) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def test_adopts_a_matching_orphan_and_releases_one_that_stops_matching(admin: APIClient) -> None:
    assert admin.post(RS, orphan_rs("web-manual", {"app": "web"}))[0] == 201
    assert admin.post(RS, orphan_rs("other", {"app": "other"}))[0] == 201
    create(admin, deploy_body(replicas=3))
    client, _ = run()
    assert actions(client) == ["patch replicasets default/web-manual", "update replicasets default/web-manual",
                               "update deployments default/web", "update-status deployments default/web"]
    adopted = admin.get(f"{RS}/web-manual")[1]
    uid = get_deploy(admin)["metadata"]["uid"]
    assert adopted["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                       "name": "web", "uid": uid, "controller": True,
                                                       "blockOwnerDeletion": True}]
    assert adopted["metadata"]["annotations"][ro.REVISION] == "1"
    assert "ownerReferences" not in admin.get(f"{RS}/other")[1]["metadata"]
    progressing = condition(get_deploy(admin), "Progressing")
    assert (progressing["reason"], progressing["message"]) == ("FoundNewReplicaSet",
                                                               'Found new replica set "web-manual"')

    admin.patch(f"{RS}/web-manual", {"metadata": {"labels": {"app": "manual"}}})
    client, _ = run()
    assert actions(client)[0] == "patch replicasets default/web-manual"
    assert not admin.get(f"{RS}/web-manual")[1]["metadata"].get("ownerReferences")
    assert any(a.startswith("create replicasets default/web-") for a in actions(client))


def test_a_name_collision_bumps_collision_count(admin: APIClient) -> None:
    create(admin, deploy_body(replicas=2, paused=True))
    d = get_deploy(admin)
    taken = f"web-{ro.compute_hash(d['spec']['template'], None)}"
    squatter = orphan_rs(taken, {"app": "squatter"}, image="other:1")
    squatter["spec"]["selector"] = {"matchLabels": {"app": "squatter"}}
    squatter["spec"]["template"]["metadata"]["labels"] = {"app": "squatter"}
    assert admin.post(RS, squatter)[0] == 201
    admin.patch(f"{DEPLOYS}/web", {"spec": {"paused": False}})
    client, _ = run()
    d = get_deploy(admin)
    assert d["status"]["collisionCount"] == 1
    mine = f"web-{ro.compute_hash(d['spec']['template'], 1)}"
    assert mine != taken
    assert actions(client) == ["update-status deployments default/web", f"create replicasets default/{mine}",
                               "create events default/web", "update deployments default/web",
                               "update-status deployments default/web"]
    again, _ = run()
    assert again.action_strings() == []


def test_a_deployment_being_deleted_only_gets_its_status(admin: APIClient) -> None:
    body = deploy_body(replicas=2)
    body["metadata"]["finalizers"] = ["example.com/hold"]
    create(admin, body)
    run()
    assert admin.delete(f"{DEPLOYS}/web")[0] in (200, 202)
    assert get_deploy(admin)["metadata"].get("deletionTimestamp")
    assert admin.post(RS, orphan_rs("web-orphan", {"app": "web"}, replicas=0))[0] == 201
    simulate_rs_controller(admin)
    admin.patch(f"{DEPLOYS}/web", {"spec": {"replicas": 5}})
    client, after = run()
    assert actions(client) == ["update-status deployments default/web"]
    assert after is None
    assert [rs["spec"]["replicas"] for rs in replicasets(admin) if rs["metadata"]["name"] != "web-orphan"] == [2]
    assert "ownerReferences" not in admin.get(f"{RS}/web-orphan")[1]["metadata"]
    assert get_deploy(admin)["status"]["replicas"] == 2


def test_a_conflict_propagates(admin: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    create(admin, deploy_body(replicas=2))

    def conflict(self: Client, plural: str, obj: Obj) -> Obj:
        raise errors.Conflict(plural, obj["metadata"]["name"], "apps")

    monkeypatch.setattr(Client, "update_status", conflict)
    with pytest.raises(errors.Conflict):
        run()
    monkeypatch.undo()
    client, _ = run()  # the retry converges: the ReplicaSet is found, not made again
    assert not any(a.startswith("create replicasets") for a in actions(client))
    assert actions(client)[-1] == "update-status deployments default/web"


def test_a_missing_deployment_is_nothing_to_do(admin: APIClient) -> None:
    client, after = run("nope")
    assert client.action_strings() == [] and after is None


def test_stale_old_status_stops_the_scale_down_instead_of_scaling_up(admin: APIClient) -> None:
    """An old ReplicaSet that reports more available pods than it wants (just scaled down, status not
    yet updated) is left alone for this sync, as upstream's cleanupUnhealthyReplicas refuses it."""
    create(admin, deploy_body(replicas=5, strategy=rolling(1, 1)))
    settle(admin)
    set_image(admin, "nginx:2")
    run()  # old 5 -> 4 (status still 5 available), new 0 -> 1
    old = by_revision(admin)[1]
    assert old["spec"]["replicas"] == 4 and old["status"]["availableReplicas"] == 5
    new = by_revision(admin)[2]
    status = {"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
              "observedGeneration": new["metadata"]["generation"]}
    admin.put(f"{RS}/{new['metadata']['name']}/status", {**new, "status": status})
    client, _ = run()
    assert not [a for a in actions(client) if a.startswith("update replicasets")], actions(client)
    assert by_revision(admin)[1]["spec"]["replicas"] == 4
