"""Tests of the /openapi/v3 documents, including kubectl 1.32's own reading of them.

The kubectl tests start a tiny in-process HTTP server that serves only discovery, the OpenAPI
documents and an in-memory object map, then run the real kubectl binary against it: this checks
that kubectl turns on server-side field validation (sends fieldValidation=Strict, never fetches
/openapi/v2), builds strategic merge patches from our schemas, and that `kubectl explain` works.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.openapi import openapi_v3_document, openapi_v3_hash, openapi_v3_index
from chalicelib.types import registry
from chalicelib.types.schema import all_schemas

KUBECTL = shutil.which("kubectl")


def _gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _gvk_of(operation: dict[str, Any]) -> tuple[str, str, str]:
    gvk = operation["x-kubernetes-group-version-kind"]
    return gvk["group"], gvk["version"], gvk["kind"]


# -- document structure ----------------------------------------------------------------------------

def test_index_lists_every_group_version_with_a_hashed_url() -> None:
    index = openapi_v3_index()
    assert set(index["paths"]) == {_gv_key(g, v) for g, v in registry.group_versions()}
    assert "api/v1" in index["paths"] and "apis/apps/v1" in index["paths"]
    assert "apis/coordination.k8s.io/v1" in index["paths"]
    for group, version in registry.group_versions():
        url = index["paths"][_gv_key(group, version)]["serverRelativeURL"]
        assert url == f"/openapi/v3/{_gv_key(group, version)}?hash={openapi_v3_hash(group, version)}"
        assert len(url.rsplit("=", 1)[1]) == 128


def test_unknown_group_version_has_no_document() -> None:
    assert openapi_v3_document("example.com", "v1") is None
    assert openapi_v3_document("apps", "v2") is None
    assert openapi_v3_hash("apps", "v2") is None


def test_documents_are_computed_once() -> None:
    assert openapi_v3_document("", "v1") is openapi_v3_document("", "v1")
    assert openapi_v3_index() is openapi_v3_index()


def test_kube_path_layout() -> None:
    core = openapi_v3_document("", "v1")
    apps = openapi_v3_document("apps", "v1")
    assert core is not None and apps is not None
    paths = core["paths"]
    for path, methods in {
        "/api/v1/": {"get"},
        "/api/v1/namespaces/{namespace}/pods": {"get", "post", "delete"},
        "/api/v1/namespaces/{namespace}/pods/{name}": {"get", "put", "patch", "delete"},
        "/api/v1/namespaces/{namespace}/pods/{name}/status": {"get", "put", "patch"},
        "/api/v1/namespaces/{namespace}/pods/{name}/binding": {"post"},
        "/api/v1/pods": {"get"},
        "/api/v1/namespaces": {"get", "post"},
        "/api/v1/namespaces/{name}": {"get", "put", "patch", "delete"},
        "/api/v1/namespaces/{name}/finalize": {"put"},
        "/api/v1/nodes/{name}/status": {"get", "put", "patch"},
    }.items():
        assert methods == set(paths[path]) - {"parameters"}, path
    assert not any("/watch/" in p for p in paths)
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert _gvk_of(scale["patch"]) == ("autoscaling", "v1", "Scale")
    assert "io.k8s.api.autoscaling.v1.Scale" in apps["components"]["schemas"]
    binding = paths["/api/v1/namespaces/{namespace}/pods/{name}/binding"]["post"]
    assert _gvk_of(binding) == ("", "v1", "Binding")
    listing = paths["/api/v1/namespaces/{namespace}/pods"]["get"]
    assert listing["x-kubernetes-action"] == "list"
    names = {p["name"] for p in listing["parameters"]}
    assert {"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "timeoutSeconds",
            "watch"} <= names
    assert "application/json;stream=watch" in listing["responses"]["200"]["content"]
    delete = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["delete"]
    assert {"propagationPolicy", "gracePeriodSeconds", "dryRun"} <= {p["name"] for p in delete["parameters"]}
    item_params = paths["/api/v1/namespaces/{namespace}/pods/{name}"]["parameters"]
    assert [(p["name"], p["in"]) for p in item_params] == [("name", "path"), ("namespace", "path"),
                                                          ("pretty", "query")]


def test_every_write_operation_of_every_resource_declares_field_validation() -> None:
    for group, version in registry.group_versions():
        doc = openapi_v3_document(group, version)
        assert doc is not None
        seen: set[tuple[str, str, str, str]] = set()
        for path, item in doc["paths"].items():
            for method in ("post", "put", "patch"):
                op = item.get(method)
                if op is None:
                    continue
                params = {(p["name"], p["in"]) for p in op["parameters"]}
                assert {("fieldValidation", "query"), ("dryRun", "query"), ("fieldManager", "query")} <= params, \
                    (path, method)
                assert op["x-kubernetes-action"] in ("post", "put", "patch")
                seen.add((method, *_gvk_of(op)))
                if method == "patch":
                    content = op["requestBody"]["content"]
                    assert "application/strategic-merge-patch+json" in content
                    assert "application/apply-patch+yaml" in content
        for res in registry.resources_in(group, version):
            for method in ("post", "put", "patch"):
                assert (method, res.group, res.version, res.kind) in seen, (method, res.kind)


def test_components_hold_every_referenced_schema_with_gvk_extensions() -> None:
    for group, version in registry.group_versions():
        doc = openapi_v3_document(group, version)
        assert doc is not None
        schemas = doc["components"]["schemas"]
        text = json.dumps(doc)
        for ref in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
            assert ref in schemas, ref
        for res in registry.resources_in(group, version):
            for name, kind in ((res.schema_name, res.kind), (res.schema_name + "List", res.list_kind)):
                gvks = schemas[name]["x-kubernetes-group-version-kind"]
                assert {"group": res.group, "version": res.version, "kind": kind} in gvks
        assert set(schemas) <= set(all_schemas())


# -- kubectl against a stub server -----------------------------------------------------------------

class _Stub:
    """Serves discovery, /openapi/v3 and a dict of objects; records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, bytes]] = []  # method, path+query, content-type, body
        self.objects: dict[str, dict[str, Any]] = {}

    @staticmethod
    def discovery(path: str) -> dict[str, Any] | None:
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        groups = [g for g, _ in registry.group_versions() if g]
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                 "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in groups]}
        for group, version in registry.group_versions():
            if path == "/" + _gv_key(group, version):
                resources: list[dict[str, Any]] = []
                for res in registry.resources_in(group, version):
                    resources.append({"name": res.plural, "singularName": res.singular,
                                      "namespaced": res.namespaced, "kind": res.kind,
                                      "shortNames": list(res.short_names),
                                      "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
                    resources.extend({"name": f"{res.plural}/{sub}", "singularName": "",
                                      "namespaced": res.namespaced, "kind": res.kind, "verbs": ["get"]}
                                     for sub in sorted(res.subresources))
                return {"kind": "APIResourceList", "apiVersion": "v1",
                        "groupVersion": f"{group}/{version}" if group else version, "resources": resources}
        return None

    def handle(self, method: str, raw_path: str, ctype: str, body: bytes) -> tuple[int, Any]:
        self.requests.append((method, raw_path, ctype, body))
        path = urllib.parse.urlparse(raw_path).path
        if method == "GET":
            if path == "/openapi/v3":
                return 200, openapi_v3_index()
            if path.startswith("/openapi/v3/"):
                parts = path.split("/")[3:]
                group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
                doc = openapi_v3_document(group, version)
                return (200, doc) if doc else (404, {})
            found = self.discovery(path)
            if found is not None:
                return 200, found
            if path in self.objects:
                return 200, self.objects[path]
            return 404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                         "reason": "NotFound", "code": 404, "message": "not found"}
        obj = json.loads(body)
        if method == "POST":
            obj.setdefault("metadata", {}).update(uid="uid-1", resourceVersion="1")
            self.objects[f"{path}/{obj['metadata']['name']}"] = obj
            return 201, obj
        return 200, self.objects.get(path, {})  # PATCH: the reply content does not matter here


@pytest.fixture()
def stub() -> Iterator[tuple[_Stub, str]]:
    state = _Stub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code, reply = state.handle(self.command, self.path, self.headers.get("Content-Type", ""), body)
            data = json.dumps(reply).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _kubectl(url: str, tmp: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    config = tmp / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "stub",
        "clusters": [{"name": "stub", "cluster": {"server": url}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub", "namespace": "default"}}],
        "users": [{"name": "stub", "user": {}}]}))
    return subprocess.run([KUBECTL, "--kubeconfig", str(config), "--cache-dir", str(tmp / "cache"), *args],
                          input=stdin, capture_output=True, text=True, timeout=60,
                          env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"})


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:IMAGE
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {key: value}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: leader}
spec: {holderIdentity: me, leaseDurationSeconds: 15}
---
apiVersion: v1
kind: Pod
metadata: {name: solo}
spec:
  containers: [{name: c, image: busybox}]
"""


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_apply_uses_server_side_field_validation(stub: tuple[_Stub, str], tmp_path: Path) -> None:
    state, url = stub
    done = _kubectl(url, tmp_path, "apply", "-f", "-", stdin=DEPLOYMENT.replace("IMAGE", "1"))
    assert done.returncode == 0, done.stderr
    posts = [r for r in state.requests if r[0] == "POST"]
    assert len(posts) == 4
    for _, path, _, _ in posts:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
        assert query["fieldValidation"] == ["Strict"], path
    assert not any(r[1].startswith("/openapi/v2") for r in state.requests)

    # Re-applying a change patches with a strategic merge patch built from our schemas' merge keys.
    state.requests.clear()
    done = _kubectl(url, tmp_path, "apply", "-f", "-", stdin=DEPLOYMENT.replace("IMAGE", "2"))
    assert done.returncode == 0, done.stderr
    patches = [r for r in state.requests if r[0] == "PATCH"]
    assert len(patches) == 1
    _, path, ctype, body = patches[0]
    assert path.startswith("/apis/apps/v1/namespaces/default/deployments/web?")
    assert "fieldValidation=Strict" in path
    assert ctype == "application/strategic-merge-patch+json"
    spec = json.loads(body)["spec"]["template"]["spec"]
    assert spec["$setElementOrder/containers"] == [{"name": "web"}]
    assert spec["containers"] == [{"image": "nginx:2", "name": "web"}]
    assert not any(r[1].startswith("/openapi/v2") for r in state.requests)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_explain_reads_our_schemas(stub: tuple[_Stub, str], tmp_path: Path) -> None:
    _, url = stub
    done = _kubectl(url, tmp_path, "explain", "pods.spec.containers")
    assert done.returncode == 0, done.stderr
    assert "containers <[]Container>" in done.stdout
    assert "List of containers belonging to the pod" in done.stdout
    assert "imagePullPolicy\t<string>" in done.stdout
    done = _kubectl(url, tmp_path, "explain", "deployments.spec.template.spec.containers.resources.limits")
    assert done.returncode == 0, done.stderr
    assert "Limits describes the maximum amount of compute resources allowed" in done.stdout
    done = _kubectl(url, tmp_path, "explain", "leases.spec")
    assert done.returncode == 0, done.stderr
    assert "holderIdentity" in done.stdout
