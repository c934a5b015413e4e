"""Every served resource goes through the whole verb set: create, get, list, update, patch, delete."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib.types import registry
from tests.conftest import APIClient

POD_SPEC = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
SAMPLES: dict[str, dict[str, Any]] = {
    "core/namespaces": {"metadata": {"name": "sample"}},
    "core/nodes": {"metadata": {"name": "sample"}, "spec": {"providerID": "aws:///us-east-1a/i-0123"}},
    "core/pods": {"metadata": {"name": "sample"}, "spec": POD_SPEC},
    "core/events": {"metadata": {"name": "sample"}, "reason": "Started", "message": "hello", "type": "Normal",
                    "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}},
    "core/configmaps": {"metadata": {"name": "sample"}, "data": {"a": "1"}},
    "core/services": {"metadata": {"name": "sample"},
                      "spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    "apps/deployments": {"metadata": {"name": "sample"},
                         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                                  "template": {"metadata": {"labels": {"app": "x"}}, "spec": POD_SPEC}}},
    "apps/replicasets": {"metadata": {"name": "sample"},
                         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                                  "template": {"metadata": {"labels": {"app": "x"}}, "spec": POD_SPEC}}},
    "coordination.k8s.io/leases": {"metadata": {"name": "sample"},
                                   "spec": {"holderIdentity": "me", "leaseDurationSeconds": 40}},
    "skiff.io/nodepools": {"metadata": {"name": "sample"},
                           "spec": {"instanceTypes": ["m5.large"], "launchTemplate": {"name": "skiff-node"}}},
    "skiff.io/nodeclaims": {"metadata": {"name": "sample"},
                            "spec": {"nodePool": "sample", "instanceType": "m5.large", "zone": "us-east-1a",
                                     "capacityType": "on-demand"}},
}


def collection(res: registry.ResourceInfo) -> str:
    base = f"/apis/{res.group}/{res.version}" if res.group else "/api/v1"
    return f"{base}/namespaces/default/{res.plural}" if res.namespaced else f"{base}/{res.plural}"


def test_every_resource_has_a_sample() -> None:
    assert set(SAMPLES) == {r.key for r in registry.RESOURCES}


@pytest.mark.parametrize("res", registry.RESOURCES, ids=lambda r: r.key)
def test_full_verb_set(admin: APIClient, res: registry.ResourceInfo) -> None:
    path = collection(res)
    body = {"apiVersion": res.api_version, "kind": res.kind, **copy.deepcopy(SAMPLES[res.key])}
    code, created = admin.post(path, body)
    assert code == 201, created
    item = f"{path}/sample"
    code, got = admin.get(item)
    assert code == 200 and got["metadata"]["uid"] == created["metadata"]["uid"]
    code, listed = admin.get(path)
    assert code == 200 and listed["kind"] == f"{res.kind}List"
    assert "sample" in [i["metadata"]["name"] for i in listed["items"]]
    got["metadata"].setdefault("labels", {})["updated"] = "yes"
    code, updated = admin.put(item, got)
    assert code == 200 and updated["metadata"]["labels"]["updated"] == "yes"
    assert int(updated["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
    code, patched = admin.patch(item, {"metadata": {"annotations": {"patched": "yes"}}})
    assert code == 200 and patched["metadata"]["annotations"]["patched"] == "yes"
    code, _ = admin.put(item, got)  # got's resourceVersion is stale by now
    assert code == 409
    code, deleted = admin.delete(item)
    assert code in (200, 202)
    if res.key != "core/namespaces":  # a namespace waits for its contents to be removed
        assert admin.get(item)[0] == 404
