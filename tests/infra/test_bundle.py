"""The Lambda bundle and the agent wheel that `pulumi up` uploads: complete, within Lambda's limits,
and the bundle's handlers answer when run from the bundle alone (with moto as AWS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from skiff_deploy import bundle

REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter whose path starts at the unzipped bundle, as Lambda's does (/var/task);
# moto comes from the venv behind it. Prints one JSON line with what each handler answered.
_PROBE = r'''
import json, os, sys
from moto import mock_aws

with mock_aws():
    import app
    from chalicelib.store.models import ensure_tables
    from chalicelib.api.auth import issue_token
    import chalice, chalicelib, pynamodb, yaml, jsonpatch

    here = os.getcwd()
    origins = {m.__name__: m.__file__ for m in (app, chalice, chalicelib, pynamodb, yaml, jsonpatch)}
    ensure_tables()
    token = issue_token("admin", description="bundle test")

    def call(path, params, resource, headers=None):
        event = {
            "resource": resource, "path": path, "httpMethod": "GET",
            "headers": headers or {}, "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": params, "stageVariables": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": resource, "httpMethod": "GET", "path": "/api" + path,
                               "stage": "api", "apiId": "abc123", "requestId": "r1",
                               "identity": {"sourceIp": "127.0.0.1"}},
        }
        out = app.app(event, None)
        return out["statusCode"], json.loads(out["body"])

    version = call("/version", {"p1": "version"}, "/{p1}")
    namespaces = call("/api/v1/namespaces", {"p1": "api", "p2": "v1", "p3": "namespaces"}, "/{p1}/{p2}/{p3}",
                      {"Authorization": "Bearer " + token})
    unauthorized = call("/api/v1/namespaces", {"p1": "api", "p2": "v1", "p3": "namespaces"}, "/{p1}/{p2}/{p3}")
    # The stream handlers with a batch of one record (a namespace that is not being deleted: no work).
    record = {"eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
              "eventSourceARN": os.environ["SKIFF_OBJECTS_STREAM_ARN"],
              "dynamodb": {"Keys": {"kind": {"S": "core/namespaces"}, "key": {"S": "/x"}},
                           "NewImage": {"kind": {"S": "core/namespaces"}, "key": {"S": "/x"}, "rv": {"N": "1"},
                                        "body": {"S": json.dumps({"metadata": {"name": "x"}})}},
                           "SequenceNumber": "1", "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    app.on_objects_change({"Records": [record]}, None)
    app.on_capacity_change({"Records": [record]}, None)
    app.resync({"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
                "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
                "resources": [], "detail": {}}, None)
    print(json.dumps({"origins": origins, "here": here, "version": version, "namespaces": namespaces,
                      "unauthorized": unauthorized[0]}))
'''


def test_bundle_holds_the_app_its_libraries_and_chalices_runtime(lambda_bundle: Path) -> None:
    with zipfile.ZipFile(lambda_bundle) as zf:
        names = set(zf.namelist())
    assert {"app.py", "chalice/app.py", "chalice/__init__.py", "chalicelib/__init__.py",
            "chalicelib/store/models.py", "chalicelib/types/schemas.json"} <= names
    for package in ("pynamodb/__init__.py", "jsonpatch.py", "yaml/__init__.py", "botocore/__init__.py"):
        assert package in names, f"{package} (from requirements.txt) is missing from the bundle"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    every_chalicelib_file = {f"chalicelib/{p.relative_to(REPO / 'chalicelib').as_posix()}"
                             for p in (REPO / "chalicelib").rglob("*")
                             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert every_chalicelib_file <= names


def test_bundle_is_within_lambdas_size_limits(lambda_bundle: Path) -> None:
    assert lambda_bundle.stat().st_size < bundle.LAMBDA_ZIPPED_LIMIT
    assert bundle.unzipped_size(lambda_bundle) < bundle.LAMBDA_UNZIPPED_LIMIT


def test_bundle_is_reproducible(lambda_bundle: Path, build_dir: Path) -> None:
    """Same inputs, same bytes: Pulumi uploads a new version only when something changed."""
    again = bundle.build_lambda_bundle(build_dir)
    assert again == lambda_bundle
    with zipfile.ZipFile(lambda_bundle) as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_handlers_from_the_bundle_answer_with_moto_behind_them(lambda_bundle: Path, tmp_path: Path) -> None:
    task = tmp_path / "task"
    with zipfile.ZipFile(lambda_bundle) as zf:
        zf.extractall(task)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKIFF_", "AWS_"))}
    env.update({"PYTHONPATH": str(task), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "SKIFF_TABLE_PREFIX": "bundle",
                "SKIFF_OBJECTS_STREAM_ARN":
                    "arn:aws:dynamodb:us-east-1:123456789012:table/bundle-objects/stream/2026-01-01T00:00:00.000"})
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=task, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for module, origin in out["origins"].items():
        assert origin.startswith(str(task)), f"{module} was imported from {origin}, not from the bundle"
    status, body = out["version"]
    assert status == 200 and body.get("major") is not None
    status, body = out["namespaces"]
    assert status == 200 and body["kind"] == "NamespaceList"
    assert {"default", "kube-system"} <= {item["metadata"]["name"] for item in body["items"]}
    assert out["unauthorized"] == 401


def test_agent_wheel_is_built_from_node_agent(agent_wheel: Path) -> None:
    assert agent_wheel.name.startswith("skiff_agent-") and agent_wheel.suffix == ".whl"
    with zipfile.ZipFile(agent_wheel) as zf:
        names = zf.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "skiff-agent" in zf.read(entry_points).decode()
    assert any(n.startswith("skiff_agent/") for n in names)
