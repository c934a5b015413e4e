"""A delete that names no resourceVersion is retried when the object changed under it (as kube-apiserver
does); one that names a resourceVersion gets its 409."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.store import objects as store
from tests.conftest import APIClient

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
       "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}


def _racing_update(monkeypatch: pytest.MonkeyPatch, admin: APIClient, times: int) -> list[int]:
    """store.update fails `times` times, each after a concurrent status write changed the pod."""
    real = store.update
    calls: list[int] = []

    def update(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            monkeypatch.setattr(store, "update", real)
            code, _ = admin.request("PATCH", "/api/v1/namespaces/default/pods/p/status",
                                    {"status": {"message": f"write {len(calls)}"}},
                                    content_type="application/merge-patch+json")
            assert code == 200
            monkeypatch.setattr(store, "update", update)
            return real(*args, **kwargs)  # with the rv read before the status write: a conflict
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "update", update)
    return calls


def test_delete_without_resource_version_retries_a_conflict(cluster: None, admin: APIClient,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert admin.request("POST", "/api/v1/namespaces/default/pods", POD)[0] == 201
    calls = _racing_update(monkeypatch, admin, times=2)
    code, body = admin.request("DELETE", "/api/v1/namespaces/default/pods/p")
    assert code == 202, body
    assert body["metadata"]["deletionTimestamp"] and len(calls) == 3


def test_delete_with_resource_version_keeps_its_conflict(cluster: None, admin: APIClient,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    code, pod = admin.request("POST", "/api/v1/namespaces/default/pods", POD)
    assert code == 201
    _racing_update(monkeypatch, admin, times=1)
    code, body = admin.request("DELETE", "/api/v1/namespaces/default/pods/p",
                               {"preconditions": {"resourceVersion": pod["metadata"]["resourceVersion"]}})
    assert code == 409, body
