"""Shared fixtures: an in-process moto DynamoDB with Skiff's tables, and an API client on top."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("SKIFF_WATCH_CAP_SECONDS", "2")
os.environ.setdefault("SKIFF_WATCH_POLL_SECONDS", "0.02")
os.environ.setdefault("SKIFF_CONTROLLER_WORKERS", "1")  # in-process moto is not thread safe


def _transactions_like_dynamodb() -> None:
    """moto applies a transaction's items one by one and rolls back a failed one by restoring a copy of
    the whole table, which also cuts off open stream iterators. The local runtime's moto server checks
    all conditions first and applies nothing on failure, as DynamoDB does; unit tests use the same."""
    from skiff.motoserver import fast_transactions

    fast_transactions()


_transactions_like_dynamodb()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh in-process moto AWS with Skiff's tables and built-in namespaces."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from moto import mock_aws

    with mock_aws():
        from chalicelib.store import objects
        from chalicelib.store.models import ensure_tables

        objects._known_head.clear()
        ensure_tables()
        yield


@pytest.fixture
def cluster(aws: None) -> Iterator[None]:
    """Tables plus the built-in namespaces, with the per-process caches reset."""
    from chalicelib import bootstrap
    from chalicelib.api import auth

    bootstrap._done = False
    auth._cache.clear()
    bootstrap.ensure_builtin_objects()
    yield
    bootstrap._done = False
    auth._cache.clear()


class APIClient:
    """Calls the API's entry point directly, as app.py does, with a bearer token."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def request(self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None,
                content_type: str = "application/json", headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> tuple[int, Any]:
        from chalicelib.api.http import Request
        from chalicelib.api.server import handle

        hdrs = {"content-type": content_type, **(headers or {})}
        if self.token:
            hdrs["authorization"] = f"Bearer {self.token}"
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        resp = handle(Request(method=method, path=path, query={k: [v] for k, v in (query or {}).items()},
                              headers=hdrs, body=data))
        text = resp.encoded()
        if resp.headers.get("Content-Type") == "application/json" and text and "\n" not in text.strip():
            return resp.status, json.loads(text)
        return resp.status, text

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, content_type: str = "application/merge-patch+json",
              **kw: Any) -> tuple[int, Any]:
        return self.request("PATCH", path, body, content_type=content_type, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def admin(cluster: None) -> APIClient:
    from chalicelib.api.auth import issue_token

    return APIClient(issue_token("admin"))


@pytest.fixture
def node_client(cluster: None) -> APIClient:
    from chalicelib.api.auth import issue_token

    return APIClient(issue_token("node", node="node-a"))
