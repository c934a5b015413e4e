"""app.py through Chalice's own test client: routing by depth, content types, Status bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from chalice.test import Client

from chalicelib.api.auth import issue_token


@pytest.fixture
def chalice_client(cluster: None) -> Iterator[tuple[Client, dict[str, str]]]:
    import app

    headers = {"Authorization": f"Bearer {issue_token('admin')}", "Content-Type": "application/json"}
    with Client(app.app) as client:
        yield client, headers


def test_create_and_get_at_every_depth(chalice_client: tuple[Client, dict[str, str]]) -> None:
    client, headers = chalice_client
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    resp = client.http.post("/apis/apps/v1/namespaces/default/deployments", headers=headers, body=json.dumps(body))
    assert resp.status_code == 201
    resp = client.http.get("/apis/apps/v1/namespaces/default/deployments/web/scale", headers=headers)
    assert resp.status_code == 200 and resp.json_body["spec"]["replicas"] == 1
    resp = client.http.get("/version")
    assert resp.status_code == 200 and resp.json_body["major"] == "1"


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/json-patch+json",
                                          "application/strategic-merge-patch+json"])
def test_patch_content_types_reach_the_handler(chalice_client: tuple[Client, dict[str, str]],
                                               content_type: str) -> None:
    client, headers = chalice_client
    client.http.post("/api/v1/namespaces/default/configmaps", headers=headers,
                     body=json.dumps({"metadata": {"name": "cm"}, "data": {"a": "1"}}))
    patch = [{"op": "add", "path": "/data/b", "value": "2"}] if content_type.endswith("json-patch+json") \
        else {"data": {"b": "2"}}
    resp = client.http.patch("/api/v1/namespaces/default/configmaps/cm",
                             headers={**headers, "Content-Type": content_type}, body=json.dumps(patch))
    assert resp.status_code == 200, resp.body
    assert resp.json_body["data"] == {"a": "1", "b": "2"}


def test_unsupported_content_type_is_a_status(chalice_client: tuple[Client, dict[str, str]]) -> None:
    client, headers = chalice_client
    resp = client.http.post("/api/v1/namespaces/default/configmaps",
                            headers={**headers, "Content-Type": "text/plain"}, body="hello")
    assert resp.status_code == 415
    assert resp.json_body["kind"] == "Status" and resp.json_body["reason"] == "UnsupportedMediaType"


def test_no_token_is_a_401_status(chalice_client: tuple[Client, dict[str, str]]) -> None:
    client, _ = chalice_client
    resp = client.http.get("/api/v1/namespaces/default/pods")
    assert resp.status_code == 401 and resp.json_body["reason"] == "Unauthorized"
