"""The API's verbs through its entry point, on in-process moto: what a client sees, and what is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.store import objects as store
from tests.conftest import APIClient

PODS = "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
CMS = "/api/v1/namespaces/default/configmaps"


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def test_create_get_sets_server_metadata_and_defaults(admin: APIClient) -> None:
    code, created = admin.post(PODS, pod("p1"))
    assert code == 201
    md = created["metadata"]
    assert md["namespace"] == "default" and md["uid"] and md["resourceVersion"] and md["creationTimestamp"]
    assert created["spec"]["restartPolicy"] == "Always"
    assert created["spec"]["terminationGracePeriodSeconds"] == 30
    assert created["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert created["status"]["phase"] == "Pending"
    code, got = admin.get(f"{PODS}/p1")
    assert code == 200 and got == created


def test_deployment_defaults(admin: APIClient) -> None:
    code, d = admin.post(DEPLOYS, deployment("web"))
    assert code == 201
    assert d["spec"]["strategy"] == {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert d["spec"]["revisionHistoryLimit"] == 10
    assert d["spec"]["progressDeadlineSeconds"] == 600
    assert d["metadata"]["generation"] == 1


def test_generate_name(admin: APIClient) -> None:
    body = pod("")
    body["metadata"] = {"generateName": "web-"}
    code, created = admin.post(PODS, body)
    assert code == 201
    assert created["metadata"]["name"].startswith("web-") and len(created["metadata"]["name"]) == 9


def test_create_twice_is_already_exists(admin: APIClient) -> None:
    admin.post(CMS, {"metadata": {"name": "a"}, "data": {"k": "v"}})
    code, status = admin.post(CMS, {"metadata": {"name": "a"}, "data": {"k": "other"}})
    assert code == 409 and status["reason"] == "AlreadyExists"
    assert admin.get(f"{CMS}/a")[1]["data"] == {"k": "v"}


def test_missing_namespace_is_refused(admin: APIClient) -> None:
    code, status = admin.post("/api/v1/namespaces/nope/configmaps", {"metadata": {"name": "a"}})
    assert code == 404 and status["reason"] == "NotFound" and "nope" in status["message"]


def test_update_with_stale_resource_version_conflicts(admin: APIClient) -> None:
    _, cm = admin.post(CMS, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    first = dict(cm, data={"k": "2"})
    code, updated = admin.put(f"{CMS}/a", first)
    assert code == 200 and updated["data"] == {"k": "2"}
    stale = dict(cm, data={"k": "3"})
    code, status = admin.put(f"{CMS}/a", stale)
    assert code == 409 and status["reason"] == "Conflict"
    assert admin.get(f"{CMS}/a")[1]["data"] == {"k": "2"}


def test_update_that_changes_nothing_writes_nothing(admin: APIClient) -> None:
    _, cm = admin.post(CMS, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    head = store.head("core/configmaps")
    code, same = admin.put(f"{CMS}/a", cm)
    assert code == 200 and same["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
    assert store.head("core/configmaps") == head


def test_main_resource_ignores_status_and_status_ignores_spec(admin: APIClient) -> None:
    _, p = admin.post(PODS, pod("p1"))
    p["status"] = {"phase": "Running"}
    p["spec"]["activeDeadlineSeconds"] = 100
    _, after = admin.put(f"{PODS}/p1", p)
    assert after["status"]["phase"] == "Pending" and after["spec"]["activeDeadlineSeconds"] == 100
    after["status"] = {"phase": "Running"}
    after["spec"]["activeDeadlineSeconds"] = 50
    code, st = admin.put(f"{PODS}/p1/status", after)
    assert code == 200
    assert st["status"]["phase"] == "Running" and st["spec"]["activeDeadlineSeconds"] == 100


def test_generation_bumps_on_spec_changes_only(admin: APIClient) -> None:
    admin.post(DEPLOYS, deployment("web"))
    _, d = admin.patch(f"{DEPLOYS}/web", {"metadata": {"labels": {"x": "y"}}})
    assert d["metadata"]["generation"] == 1
    _, d = admin.patch(f"{DEPLOYS}/web", {"spec": {"replicas": 4}})
    assert d["metadata"]["generation"] == 2
    _, d = admin.patch(f"{DEPLOYS}/web/status", {"status": {"replicas": 4}})
    assert d["metadata"]["generation"] == 2 and d["status"]["replicas"] == 4


@pytest.mark.parametrize("content_type,body", [
    ("application/merge-patch+json", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}),
    ("application/strategic-merge-patch+json", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}),
    ("application/json-patch+json", [{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                                      "value": "busybox:2"}]),
])
def test_patch_types(admin: APIClient, content_type: str, body: Any) -> None:
    admin.post(DEPLOYS, deployment("web"))
    code, d = admin.patch(f"{DEPLOYS}/web", body, content_type=content_type)
    assert code == 200, d
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"


def test_strategic_merge_keeps_other_containers(admin: APIClient) -> None:
    dep = deployment("web")
    dep["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    admin.post(DEPLOYS, dep)
    _, d = admin.patch(f"{DEPLOYS}/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "image": "busybox:2"}]}}}}, content_type="application/strategic-merge-patch+json")
    assert [(c["name"], c["image"]) for c in d["spec"]["template"]["spec"]["containers"]] == [
        ("c", "busybox"), ("side", "busybox:2")]


def test_patch_with_stale_resource_version_conflicts(admin: APIClient) -> None:
    _, cm = admin.post(CMS, {"metadata": {"name": "a"}, "data": {"k": "1"}})
    admin.patch(f"{CMS}/a", {"data": {"k": "2"}})
    code, status = admin.patch(f"{CMS}/a", {"metadata": {"resourceVersion": cm["metadata"]["resourceVersion"]},
                                            "data": {"k": "3"}})
    assert code == 409 and status["reason"] == "Conflict"


def test_finalizers_hold_deletion_until_removed(admin: APIClient) -> None:
    admin.post(CMS, {"metadata": {"name": "a", "finalizers": ["example.com/hold"]}})
    code, marked = admin.delete(f"{CMS}/a")
    assert code == 202 and marked["metadata"]["deletionTimestamp"]
    assert admin.get(f"{CMS}/a")[0] == 200
    code, _ = admin.patch(f"{CMS}/a", {"metadata": {"finalizers": None}})
    assert code == 200
    assert admin.get(f"{CMS}/a")[0] == 404


def test_delete_records_propagation_policy_and_grace(admin: APIClient) -> None:
    admin.post(DEPLOYS, deployment("web"))
    code, d = admin.delete(f"{DEPLOYS}/web", query={"propagationPolicy": "Foreground"})
    assert code == 202 and "foregroundDeletion" in d["metadata"]["finalizers"]
    admin.post(PODS, pod("p1"))
    admin.post("/api/v1/nodes", {"metadata": {"name": "n1"}})
    admin.post(f"{PODS}/p1/binding", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"},
                                      "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}})
    code, p = admin.delete(f"{PODS}/p1", query={"gracePeriodSeconds": "12"})
    assert code == 202 and p["metadata"]["deletionGracePeriodSeconds"] == 12
    code, _ = admin.delete(f"{PODS}/p1", query={"gracePeriodSeconds": "0"})
    assert code == 200 and admin.get(f"{PODS}/p1")[0] == 404


def test_unbound_pod_is_deleted_at_once(admin: APIClient) -> None:
    admin.post(PODS, pod("p1"))
    code, _ = admin.delete(f"{PODS}/p1")
    assert code == 200 and admin.get(f"{PODS}/p1")[0] == 404


def test_binding_sets_node_once(admin: APIClient) -> None:
    admin.post(PODS, pod("p1"))
    admin.post("/api/v1/nodes", {"metadata": {"name": "n1"}})
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    assert admin.post(f"{PODS}/p1/binding", binding)[0] == 201
    p = admin.get(f"{PODS}/p1")[1]
    assert p["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    code, status = admin.post(f"{PODS}/p1/binding", dict(binding, target={"name": "n2"}))
    assert code == 409


def test_scale_subresource(admin: APIClient) -> None:
    admin.post(DEPLOYS, deployment("web", 2))
    code, sc = admin.get(f"{DEPLOYS}/web/scale")
    assert code == 200 and sc["kind"] == "Scale" and sc["spec"]["replicas"] == 2
    assert sc["status"]["selector"] == "app=web"
    code, sc = admin.patch(f"{DEPLOYS}/web/scale", {"spec": {"replicas": 5}})
    assert code == 200 and sc["spec"]["replicas"] == 5
    assert admin.get(f"{DEPLOYS}/web")[1]["spec"]["replicas"] == 5
    code, status = admin.patch(f"{DEPLOYS}/web/scale", {"spec": {"replicas": -1}})
    assert code == 422


def test_list_label_and_field_selectors(admin: APIClient) -> None:
    admin.post(PODS, pod("a", app="web", tier="fe"))
    admin.post(PODS, pod("b", app="web", tier="be"))
    admin.post(PODS, pod("c", app="db"))
    names = lambda q: [i["metadata"]["name"] for i in admin.get(PODS, query=q)[1]["items"]]  # noqa: E731
    assert names({"labelSelector": "app=web"}) == ["a", "b"]
    assert names({"labelSelector": "app=web,tier!=fe"}) == ["b"]
    assert names({"labelSelector": "tier in (fe,be)"}) == ["a", "b"]
    assert names({"labelSelector": "!tier"}) == ["c"]
    assert names({"fieldSelector": "metadata.name=c"}) == ["c"]
    assert names({"fieldSelector": "status.phase=Pending"}) == ["a", "b", "c"]
    code, status = admin.get(PODS, query={"fieldSelector": "spec.bogus=1"})
    assert code == 400
    code, status = admin.get(PODS, query={"labelSelector": "app in (web"})
    assert code == 400


def test_list_pagination_with_continue(admin: APIClient) -> None:
    for i in range(7):
        admin.post(CMS, {"metadata": {"name": f"cm{i}"}})
    seen: list[str] = []
    query = {"limit": "3"}
    rvs = set()
    while True:
        code, page = admin.get(CMS, query=query)
        assert code == 200 and len(page["items"]) <= 3
        seen += [i["metadata"]["name"] for i in page["items"]]
        rvs.add(page["metadata"]["resourceVersion"])
        if not page["metadata"].get("continue"):
            break
        query = {"limit": "3", "continue": page["metadata"]["continue"]}
    assert seen == [f"cm{i}" for i in range(7)]
    assert len(rvs) == 1
    assert admin.get(CMS, query={"continue": "garbage!"})[0] == 400


def test_all_namespaces_list(admin: APIClient) -> None:
    admin.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    admin.post(PODS, pod("a"))
    admin.post("/api/v1/namespaces/other/pods", pod("b"))
    _, lst = admin.get("/api/v1/pods")
    assert sorted(i["metadata"]["name"] for i in lst["items"]) == ["a", "b"]
    assert lst["kind"] == "PodList"


def watch(client: APIClient, path: str, **query: str) -> list[dict[str, Any]]:
    code, body = client.get(path, query={"watch": "true", **query})
    assert code == 200
    text = body if isinstance(body, str) else json.dumps(body)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_watch_from_list_revision_delivers_each_change_once(admin: APIClient) -> None:
    admin.post(CMS, {"metadata": {"name": "before"}})
    rv = admin.get(CMS)[1]["metadata"]["resourceVersion"]
    admin.post(CMS, {"metadata": {"name": "a"}})
    admin.patch(f"{CMS}/a", {"data": {"k": "v"}})
    admin.delete(f"{CMS}/a")
    events = watch(admin, CMS, resourceVersion=rv)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    last = events[-1]["object"]["metadata"]["resourceVersion"]
    assert watch(admin, CMS, resourceVersion=last, timeoutSeconds="1") == []


def test_watch_without_revision_starts_with_current_state(admin: APIClient) -> None:
    admin.post(CMS, {"metadata": {"name": "x"}})
    events = watch(admin, CMS)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "x")]


def test_watch_bookmark_when_nothing_matches(admin: APIClient) -> None:
    rv = admin.get(CMS)[1]["metadata"]["resourceVersion"]
    admin.post(CMS, {"metadata": {"name": "x", "labels": {"a": "b"}}})
    events = watch(admin, CMS, resourceVersion=rv, labelSelector="a=c", allowWatchBookmarks="true",
                   timeoutSeconds="1")
    assert [e["type"] for e in events] == ["BOOKMARK"]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > int(rv)


def test_watch_from_expired_revision_is_410(admin: APIClient) -> None:
    rv = admin.get(CMS)[1]["metadata"]["resourceVersion"]
    for i in range(3):
        admin.post(CMS, {"metadata": {"name": f"x{i}"}})
    store.compact("core/configmaps", store.head("core/configmaps") - 1)
    events = watch(admin, CMS, resourceVersion=rv)
    assert events[-1]["type"] == "ERROR"
    assert events[-1]["object"]["code"] == 410 and events[-1]["object"]["reason"] == "Expired"


@pytest.mark.parametrize("raw,ctype,code,reason", [
    (b"{not json", "application/json", 400, "BadRequest"),
    (b"[1,2]", "application/json", 400, "BadRequest"),
    (b"name: x", "text/plain", 415, "UnsupportedMediaType"),
    (b'{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"a"}}', "application/json", 400, "BadRequest"),
    (b'{"kind":"Pod","metadata":{"name":"a"}}', "application/json", 400, "BadRequest"),
    (b'{"metadata":{"name":"Bad_Name"}}', "application/json", 422, "Invalid"),
    (b'{"metadata":{}}', "application/json", 422, "Invalid"),
])
def test_bad_input_gets_a_status_and_writes_nothing(admin: APIClient, raw: bytes, ctype: str, code: int,
                                                    reason: str) -> None:
    head = store.head("core/configmaps")
    got, status = admin.request("POST", CMS, raw=raw, content_type=ctype)
    assert got == code and status["kind"] == "Status" and status["reason"] == reason, status
    assert status["message"]
    assert store.head("core/configmaps") == head


def test_invalid_lists_every_bad_field(admin: APIClient) -> None:
    body = deployment("web", replicas=-1)
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    body["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    code, status = admin.post(DEPLOYS, body)
    assert code == 422 and status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert {"spec.replicas", "spec.template.metadata.labels", "spec.template.spec.containers[0].image"} <= fields


def test_strict_field_validation(admin: APIClient) -> None:
    body = pod("p1")
    body["spec"]["containers"][0]["imagee"] = "typo"
    code, status = admin.post(PODS, body, query={"fieldValidation": "Strict"})
    assert code == 400 and "imagee" in status["message"]
    assert admin.get(f"{PODS}/p1")[0] == 404
    code, _ = admin.post(PODS, body, query={"fieldValidation": "Ignore"})
    assert code == 201


def test_too_large_is_413(admin: APIClient) -> None:
    code, status = admin.post(CMS, {"metadata": {"name": "big"}, "data": {"k": "x" * 400_000}})
    assert code == 413 and status["reason"] == "RequestEntityTooLarge"
    assert admin.get(f"{CMS}/big")[0] == 404


def test_unknown_paths_are_404(admin: APIClient) -> None:
    assert admin.get("/api/v1/namespaces/default/widgets")[0] == 404
    assert admin.get("/apis/nope/v1/things")[0] == 404
    code, status = admin.get(f"{PODS}/missing")
    assert code == 404 and status["details"] == {"name": "missing", "kind": "pods"}


def test_no_token_is_401_and_bad_token_is_401(cluster: None) -> None:
    assert APIClient(None).get(PODS)[0] == 401
    code, status = APIClient("skiff.wrong").get(PODS)
    assert code == 401 and status["reason"] == "Unauthorized"


def test_discovery_is_public(cluster: None) -> None:
    anon = APIClient(None)
    assert anon.get("/version")[1]["major"] == "1"
    assert "v1" in anon.get("/api")[1]["versions"]
    groups = {g["name"] for g in anon.get("/apis")[1]["groups"]}
    assert {"apps", "coordination.k8s.io"} <= groups
    res = {r["name"] for r in anon.get("/apis/apps/v1")[1]["resources"]}
    assert {"deployments", "deployments/scale", "deployments/status", "replicasets"} <= res


def test_node_restriction(admin: APIClient, node_client: APIClient) -> None:
    node = node_client
    assert node.post("/api/v1/nodes", {"metadata": {"name": "node-a"}})[0] == 201
    code, status = node.post("/api/v1/nodes", {"metadata": {"name": "node-b"}})
    assert code == 403 and status["reason"] == "Forbidden"
    lease = {"metadata": {"name": "node-a"}, "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40}}
    assert node.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)[0] == 201
    other = {"metadata": {"name": "node-b"}, "spec": {"holderIdentity": "node-b"}}
    assert node.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", other)[0] == 403
    admin.post(PODS, pod("mine"))
    admin.post(PODS, pod("theirs"))
    bind = {"apiVersion": "v1", "kind": "Binding", "target": {"name": "node-a"}}
    admin.post(f"{PODS}/mine/binding", bind)
    admin.post("/api/v1/nodes", {"metadata": {"name": "node-b"}})
    admin.post(f"{PODS}/theirs/binding", dict(bind, target={"name": "node-b"}))
    assert node.patch(f"{PODS}/mine/status", {"status": {"phase": "Running"}})[0] == 200
    assert node.patch(f"{PODS}/theirs/status", {"status": {"phase": "Running"}})[0] == 403
    assert node.patch(f"{PODS}/mine", {"metadata": {"labels": {"x": "y"}}})[0] == 403
    assert node.post(DEPLOYS, deployment("web"))[0] == 403
    assert node.get(PODS, query={"fieldSelector": "spec.nodeName=node-a"})[0] == 200
    event = {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "mine", "namespace": "default"},
             "reason": "Started", "message": "started", "type": "Normal"}
    assert node.post("/api/v1/namespaces/default/events", event)[0] == 201


def test_namespace_lifecycle(admin: APIClient) -> None:
    code, ns = admin.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    assert code == 201 and ns["status"]["phase"] == "Active" and ns["spec"]["finalizers"] == ["kubernetes"]
    code, ns = admin.delete("/api/v1/namespaces/team")
    assert code == 202 and ns["status"]["phase"] == "Terminating"
    code, status = admin.post("/api/v1/namespaces/team/configmaps", {"metadata": {"name": "x"}})
    assert code == 403


def test_saturated_revision_counter_is_429(admin: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """When another writer wins the revision counter on every attempt, the client is told to retry."""
    admin.post(CMS, {"metadata": {"name": "first"}})
    real_head = store.head
    monkeypatch.setattr(store, "head", lambda kind: real_head(kind) - 1)
    monkeypatch.setattr(store, "_known_head", {})  # no good guess either  # always one behind: always loses
    code, status = admin.post(CMS, {"metadata": {"name": "busy"}})
    assert code == 429 and status["reason"] == "TooManyRequests"
    monkeypatch.setattr(store, "head", real_head)
    assert admin.get(f"{CMS}/busy")[0] == 404


def test_watch_with_selector_sees_objects_leave_and_enter(admin: APIClient) -> None:
    admin.post(CMS, {"metadata": {"name": "a", "labels": {"tier": "web"}}})
    admin.post(CMS, {"metadata": {"name": "b", "labels": {"tier": "db"}}})
    rv = admin.get(CMS)[1]["metadata"]["resourceVersion"]
    admin.patch(f"{CMS}/a", {"metadata": {"labels": {"tier": "db"}}})  # a leaves tier=web
    admin.patch(f"{CMS}/b", {"metadata": {"labels": {"tier": "web"}}})  # b enters tier=web
    admin.patch(f"{CMS}/b", {"data": {"k": "v"}})  # b changes inside
    admin.patch(f"{CMS}/a", {"data": {"k": "v"}})  # a changes outside: not seen
    events = watch(admin, CMS, resourceVersion=rv, labelSelector="tier=web")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("DELETED", "a"), ("ADDED", "b"), ("MODIFIED", "b")]


def test_delete_collection_with_selector(admin: APIClient) -> None:
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        admin.post(CMS, {"metadata": {"name": name, "labels": {"tier": tier}}})
    code, gone = admin.delete(CMS, query={"labelSelector": "tier=web"})
    assert code == 200 and sorted(i["metadata"]["name"] for i in gone["items"]) == ["a", "b"]
    assert [i["metadata"]["name"] for i in admin.get(CMS)[1]["items"]] == ["c"]


def test_server_side_apply_creates_then_updates(admin: APIClient) -> None:
    manifest = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n"
    code, created = admin.request("PATCH", f"{CMS}/ssa", raw=manifest, content_type="application/apply-patch+yaml",
                                  query={"fieldManager": "me"})
    assert code == 201 and created["data"] == {"a": "1"}
    code, updated = admin.request("PATCH", f"{CMS}/ssa", raw=manifest.replace(b"'1'", b"'2'"),
                                  content_type="application/apply-patch+yaml", query={"fieldManager": "me"})
    assert code == 200 and updated["data"] == {"a": "2"}


def test_legacy_bindings_collection(admin: APIClient) -> None:
    admin.post(PODS, pod("p1"))
    admin.post("/api/v1/nodes", {"metadata": {"name": "n1"}})
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"}, "target": {"name": "n1"}}
    assert admin.post("/api/v1/namespaces/default/bindings", binding)[0] == 201
    assert admin.get(f"{PODS}/p1")[1]["spec"]["nodeName"] == "n1"
    assert admin.post("/api/v1/namespaces/default/bindings", {"target": {"name": "n1"}})[0] == 400


def test_binding_to_a_missing_node_is_404(admin: APIClient) -> None:
    admin.post(PODS, pod("p1"))
    code, status = admin.post(f"{PODS}/p1/binding", {"apiVersion": "v1", "kind": "Binding", "target": {"name": "nope"}})
    assert code == 404 and "nope" in status["message"]
    assert "nodeName" not in admin.get(f"{PODS}/p1")[1]["spec"]
