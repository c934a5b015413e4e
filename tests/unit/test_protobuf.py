"""Kubernetes protobuf request bodies decode to the JSON the same object has.

The strongest evidence is what kubectl itself sends: `fixtures/protobuf/*.bin` are request bodies
captured from kubectl v1.32 against a throw-away HTTP server that only answers discovery, and the
matching `*.json` are what the same kubectl prints for the same command with `--dry-run=client -o json`.
They must be equal as they stand (no normalising was needed). When a kubectl is installed the capture is
repeated live, so a newer kubectl is checked too. Regenerate the fixtures with

    .venv/bin/python -m tests.unit.test_protobuf --capture

`kubectl run` and `kubectl expose` send JSON (not protobuf) in v1.32, so the Pod is covered by a body
built here from the field table (an encoder written for the tests) and by hand-built messages for
every special type and every error path.
"""

from __future__ import annotations

import base64
import datetime
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.protobuf import MAGIC, decode
from chalicelib.errors import BadRequest

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
GENERATOR = Path(__file__).parents[2] / "tools" / "gen_protobuf_fields.py"
TABLE: dict[str, dict[str, dict[str, Any]]] = json.loads(
    (Path(__file__).parents[2] / "chalicelib" / "types" / "protobuf_fields.json").read_text()
)
CORE, APPS, META = "k8s.io.api.core.v1", "k8s.io.api.apps.v1", "k8s.io.apimachinery.pkg.apis.meta.v1"
BINARY_FILE = bytes(range(256))  # not UTF-8, so kubectl puts it under binaryData

# fixture name -> the kubectl command whose request body it is
CAPTURES: dict[str, list[str]] = {
    "namespace": ["create", "namespace", "demo"],
    "configmap": ["create", "configmap", "cm", "--from-literal=a=b", "--from-file=blob.bin"],
    "deployment": ["create", "deployment", "web", "--image=busybox:1.36", "--replicas=3", "--port=80"],
    "service": ["create", "service", "clusterip", "svc", "--tcp=80:8080"],
}
RUN_POD = [
    "run",
    "p",
    "--image=busybox",
    "--labels=app=p,tier=x",
    "--env=A=B",
    "--port=8080",
    "--restart=Never",
    "--",
    "sleep",
    "3600",
]


# --- building protobuf -------------------------------------------------------------------------

SCALARS = {"string", "int32", "int64", "bool", "bytes", "double"}
ZERO: dict[str, Any] = {"string": "", "bytes": "", "int32": 0, "int64": 0, "bool": False}


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers are sent as 10-byte two's complement, as Go does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def vfield(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def lfield(number: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return tag(number, 2) + varint(len(data)) + data


def envelope(raw: bytes, kind: str = "Namespace", api_version: str = "v1", **extra: str) -> bytes:
    type_meta = lfield(1, api_version) + lfield(2, kind)
    out = MAGIC + lfield(1, type_meta) + lfield(2, raw)
    for number, name in ((3, "content_encoding"), (4, "content_type")):
        if name in extra:
            out += lfield(number, extra[name])
    return out


def _timestamp(text: str, micro: bool) -> bytes:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    seconds = int(moment.timestamp())
    return vfield(1, seconds) + (vfield(2, moment.microsecond * 1000) if micro else b"")


def encode_value(kind: str, value: Any) -> bytes:
    """A message-typed value, encoded as client-go would (the test-side inverse of the decoder)."""
    if kind in (f"{META}.Time", f"{META}.MicroTime"):
        return b"" if value is None else _timestamp(value, kind.endswith("MicroTime"))
    if kind.endswith("resource.Quantity"):
        return lfield(1, value)
    if kind.endswith("intstr.IntOrString"):
        return lfield(3, value) + vfield(1, 1) if isinstance(value, str) else vfield(1, 0) + vfield(2, value)
    if kind in (f"{META}.FieldsV1", "k8s.io.apimachinery.pkg.runtime.RawExtension"):
        return b"" if value is None else lfield(1, json.dumps(value))
    return encode(kind, value)


def encode_scalar(number: int, kind: str, value: Any) -> bytes:
    if kind in ("string", "bytes"):
        return lfield(number, base64.b64decode(value) if kind == "bytes" else value)
    if kind == "bool":
        return vfield(number, int(value))
    return vfield(number, value)


def encode(message: str, obj: dict[str, Any]) -> bytes:
    """Encode a JSON-shaped object with the field table, writing zero scalars as Go's marshaller does."""
    out = b""
    for number_text, field in TABLE[message].items():
        number, kind = int(number_text), field["type"]
        value = obj if field.get("inline") else obj.get(field["name"])
        if field.get("map"):
            for key, item in (value or {}).items():
                item_bytes = encode_scalar(2, kind, item) if kind in SCALARS else lfield(2, encode_value(kind, item))
                out += lfield(number, lfield(1, key) + item_bytes)
        elif field["repeated"]:
            for item in value or []:
                out += (
                    encode_scalar(number, kind, item) if kind in SCALARS else lfield(number, encode_value(kind, item))
                )
        elif kind in SCALARS:
            if value is not None or not field.get("pointer"):
                out += encode_scalar(number, kind, value if value is not None else ZERO[kind])
        elif value is not None or not field.get("pointer"):
            out += lfield(number, encode_value(kind, value if value is not None else go_zero(kind)))
    return out


def go_zero(kind: str) -> Any:
    """The JSON of a message-typed Go zero value, which Go's marshaller still writes."""
    if kind.endswith("Time") or kind.endswith("RawExtension"):
        return None
    if kind.endswith("resource.Quantity"):
        return "0"
    if kind.endswith("intstr.IntOrString"):
        return 0
    return {}


def body_of(message: str, obj: dict[str, Any], kind: str, api_version: str = "v1") -> bytes:
    return envelope(encode(message, obj), kind=kind, api_version=api_version)


# --- capturing what kubectl sends ----------------------------------------------------------------


def _resources(group_version: str, entries: list[tuple[str, str, bool, str]]) -> dict[str, Any]:
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": verbs}
            for name, singular, namespaced, kind in entries
        ],
    }


DISCOVERY: dict[str, dict[str, Any]] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": _resources(
        "v1",
        [
            ("namespaces", "namespace", False, "Namespace"),
            ("configmaps", "configmap", True, "ConfigMap"),
            ("pods", "pod", True, "Pod"),
            ("services", "service", True, "Service"),
        ],
    ),
    "/apis/apps/v1": _resources("apps/v1", [("deployments", "deployment", True, "Deployment")]),
}


class _Recorder(BaseHTTPRequestHandler):
    """Answers discovery, records each POST body and echoes it back decoded (404 for anything else)."""

    bodies: list[tuple[str, bytes]]

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        found = DISCOVERY.get(self.path.split("?")[0])
        if found is None:
            self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
        else:
            self._send(200, found)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.bodies.append((self.headers.get("Content-Type", ""), body))
        try:
            self._send(201, decode(body))
        except BadRequest as err:
            self._send(400, err.status())


@contextmanager
def _kubectl_env() -> Iterator[tuple[Path, list[tuple[str, bytes]]]]:
    """A work dir with a kubeconfig pointing at a recording server (no credentials: plain HTTP)."""
    bodies: list[tuple[str, bytes]] = []
    handler = type("Recorder", (_Recorder,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "blob.bin").write_bytes(BINARY_FILE)
            (work / "kubeconfig").write_text(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{server.server_address[1]}'}}}}]\n"
                "contexts: [{name: c, context: {cluster: c, namespace: default}}]\nusers: []\n"
            )
            yield work, bodies
    finally:
        server.shutdown()
        server.server_close()


def _kubectl(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(work / "kubeconfig"), *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def capture(command: list[str]) -> tuple[str, bytes, dict[str, Any]]:
    """(content type, body) kubectl POSTs for `command`, and its --dry-run=client -o json output.

    Skips the calling test when this kubectl cannot run the command at all (an older kubectl without
    one of the flags); fails when it sent a body that the decoder refused.
    """
    split = command.index("--") if "--" in command else len(command)
    with _kubectl_env() as (work, bodies):
        sent = _kubectl(work, *command[:split], "--dry-run=server", *command[split:])
        if sent.returncode and not bodies:
            pytest.skip(f"this kubectl cannot run {' '.join(command)}: {sent.stderr.strip()}")
        assert sent.returncode == 0, sent.stderr
        printed = _kubectl(work, *command[:split], "--dry-run=client", "-o", "json", *command[split:])
        assert printed.returncode == 0, printed.stderr
    assert len(bodies) == 1, bodies
    content_type, body = bodies[0]
    return content_type, body, json.loads(printed.stdout)


# --- what kubectl sends --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_captured_kubectl_bodies_decode_to_kubectl_json(name: str) -> None:
    body = (FIXTURES / f"{name}.bin").read_bytes()
    assert body.startswith(MAGIC)
    assert decode(body) == json.loads((FIXTURES / f"{name}.json").read_text())


def test_configmap_binary_data_is_base64_as_in_json() -> None:
    obj = decode((FIXTURES / "configmap.bin").read_bytes())
    assert obj["data"] == {"a": "b"}
    assert base64.b64decode(obj["binaryData"]["blob.bin"]) == BINARY_FILE


def test_deployment_keeps_explicit_numbers_and_null_timestamps() -> None:
    obj = decode((FIXTURES / "deployment.bin").read_bytes())
    assert obj["apiVersion"] == "apps/v1" and obj["kind"] == "Deployment"
    assert obj["spec"]["replicas"] == 3
    assert obj["metadata"]["creationTimestamp"] is None
    assert obj["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]
    assert obj["spec"]["strategy"] == {} and obj["status"] == {}


def test_service_target_port_int_or_string() -> None:
    obj = decode((FIXTURES / "service.bin").read_bytes())
    assert obj["spec"]["ports"] == [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_live_kubectl_protobuf_matches_its_json(name: str) -> None:
    content_type, body, printed = capture(CAPTURES[name])
    assert content_type == "application/vnd.kubernetes.protobuf"
    assert decode(body) == printed


def test_field_table_agrees_with_the_openapi_schemas() -> None:
    """The generator's cross-check, on the committed table: JSON names, int32/int64, lists, maps, refs."""
    spec = importlib.util.spec_from_file_location("gen_protobuf_fields", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.check(TABLE) == []


def test_pod_from_kubectl_run_round_trips() -> None:
    pod = json.loads((FIXTURES / "pod.json").read_text())
    body = body_of(f"{CORE}.Pod", {k: v for k, v in pod.items() if k not in ("kind", "apiVersion")}, "Pod")
    assert decode(body) == pod
    assert pod["spec"]["containers"][0]["args"] == ["sleep", "3600"]


# --- encodings of single fields ------------------------------------------------------------------


def pod_with(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    obj = {"metadata": {"name": "p", **meta}, "spec": {"containers": [{"name": "c", **(spec or {})}]}}
    return decode(body_of(f"{CORE}.Pod", obj, "Pod"))


def test_times_are_rfc3339_seconds_and_null_when_zero() -> None:
    obj = pod_with(deletionTimestamp="2026-11-29T01:02:03Z")
    assert obj["metadata"]["deletionTimestamp"] == "2026-11-29T01:02:03Z"
    assert obj["metadata"]["creationTimestamp"] is None
    # metav1.Time drops nanoseconds, as its protobuf unmarshaller does
    seconds = int(datetime.datetime(2026, 11, 29, 1, 2, 3, tzinfo=datetime.UTC).timestamp())
    raw = lfield(1, lfield(9, vfield(1, seconds) + vfield(2, 123_456_789)))
    assert decode(envelope(raw, "Pod"))["metadata"]["deletionTimestamp"] == "2026-11-29T01:02:03Z"


def test_micro_time_has_six_fractional_digits() -> None:
    spec = {
        "holderIdentity": "a",
        "renewTime": "2026-11-29T01:02:03.000000Z",
        "acquireTime": "2026-11-29T01:02:03.250000Z",
    }
    obj = decode(
        body_of(
            "k8s.io.api.coordination.v1.Lease",
            {"metadata": {"name": "l"}, "spec": spec},
            "Lease",
            "coordination.k8s.io/v1",
        )
    )
    assert obj["spec"] == spec


def test_event_micro_time_and_counts() -> None:
    event = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "Started",
        "count": 2,
        "eventTime": "2026-11-29T01:02:03.000001Z",
        "reportingComponent": "kubelet",
        "reportingInstance": "",
    }
    obj = decode(body_of(f"{CORE}.Event", event, "Event"))
    assert obj["eventTime"] == "2026-11-29T01:02:03.000001Z"
    assert obj["firstTimestamp"] is None and obj["lastTimestamp"] is None  # structs: always printed
    assert obj["source"] == {} and obj["count"] == 2 and obj["reportingInstance"] == ""


def test_quantities_and_int_or_string() -> None:
    resources = {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "0"}}
    probe = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5}
    obj = pod_with({"resources": resources, "livenessProbe": probe, "readinessProbe": {"tcpSocket": {"port": 8080}}})
    container = obj["spec"]["containers"][0]
    assert container["resources"] == resources
    assert container["livenessProbe"] == probe
    assert container["readinessProbe"] == {"tcpSocket": {"port": 8080}}


def test_an_empty_quantity_prints_as_zero() -> None:
    field_ref = lfield(2, lfield(1, "c") + lfield(2, "limits.cpu") + lfield(3, b""))  # divisor: empty Quantity
    env = lfield(7, lfield(1, "X") + lfield(3, field_ref))
    container = lfield(1, "c") + env
    obj = decode(envelope(lfield(2, lfield(2, container)), "Pod"))
    env_var = obj["spec"]["containers"][0]["env"][0]
    assert env_var == {
        "name": "X",
        "valueFrom": {"resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "0"}},
    }


def test_negative_int32_is_sign_extended_and_int64_keeps_its_range() -> None:
    assert len(varint(-1)) == 10
    obj = pod_with({"ports": [{"containerPort": -5}], "securityContext": {"runAsUser": 2**40}})
    assert obj["spec"]["containers"][0]["ports"] == [{"containerPort": -5}]
    assert obj["spec"]["containers"][0]["securityContext"] == {"runAsUser": 2**40}


def test_pointers_show_zero_but_omitempty_scalars_hide_it() -> None:
    spec = {"replicas": 0, "minReadySeconds": 0, "paused": False, "selector": {}, "template": {}}
    obj = decode(body_of(f"{APPS}.Deployment", {"metadata": {}, "spec": spec}, "Deployment", "apps/v1"))
    assert obj["spec"]["replicas"] == 0
    assert "minReadySeconds" not in obj["spec"] and "paused" not in obj["spec"]
    assert obj["spec"]["selector"] == {}
    assert obj["spec"]["template"] == {"metadata": {"creationTimestamp": None}, "spec": {"containers": None}}


def test_absent_fields_render_as_go_zero_values() -> None:
    # a non-Go client may leave out what Go always writes: a Pod with nothing but a name
    obj = decode(envelope(lfield(1, lfield(1, "p")), "Pod"))
    assert obj == {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "p", "creationTimestamp": None},
        "spec": {"containers": None},
        "status": {},
    }


def test_repeated_scalars_packed_and_unpacked() -> None:
    groups = lfield(4, varint(1) + varint(2)) + vfield(4, 3)  # supplementalGroups: packed then one more
    obj = decode(envelope(lfield(2, lfield(14, groups)), "Pod"))
    assert obj["spec"]["securityContext"] == {"supplementalGroups": [1, 2, 3]}


def test_maps_lists_and_inline_structs() -> None:
    volume = {"name": "v", "configMap": {"name": "cm", "items": [{"key": "k", "path": "p"}], "defaultMode": 420}}
    obj = decode(
        body_of(
            f"{CORE}.Pod",
            {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [], "volumes": [volume]}},
            "Pod",
        )
    )
    assert obj["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert obj["spec"]["volumes"] == [volume]  # VolumeSource and LocalObjectReference are inlined
    assert obj["spec"]["containers"] is None  # an empty list sends nothing; Go decodes it to nil


def test_managed_fields_v1_is_parsed_json() -> None:
    managed = [
        {
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-11-29T01:02:03Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]
    obj = decode(body_of(f"{CORE}.ConfigMap", {"metadata": {"name": "c", "managedFields": managed}}, "ConfigMap"))
    assert obj["metadata"]["managedFields"] == managed


def test_unknown_fields_are_skipped_and_repeated_messages_merge() -> None:
    metadata = lfield(1, "first") + lfield(99, b"future") + vfield(98, 7)
    raw = lfield(1, metadata) + lfield(1, lfield(3, "ns"))  # metadata sent twice: Go merges the two
    obj = decode(envelope(raw, "ConfigMap"))
    assert obj["metadata"] == {"name": "first", "namespace": "ns", "creationTimestamp": None}


def test_other_kinds() -> None:
    scale = decode(
        body_of(
            "k8s.io.api.autoscaling.v1.Scale",
            {"metadata": {"name": "web"}, "spec": {"replicas": 2}},
            "Scale",
            "autoscaling/v1",
        )
    )
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 0}
    binding = decode(
        body_of(f"{CORE}.Binding", {"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n"}}, "Binding")
    )
    assert binding["target"] == {"kind": "Node", "name": "n"}
    node = decode(
        body_of(
            f"{CORE}.Node",
            {"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}},
            "Node",
        )
    )
    assert node["spec"]["taints"] == [{"key": "k", "effect": "NoSchedule"}]
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}


@pytest.mark.parametrize("api_version", ["v1", "apps/v1", "batch/v1"])
def test_delete_options_under_any_group_version(api_version: str) -> None:
    options = {
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Foreground",
        "dryRun": ["All"],
        "preconditions": {"uid": "u"},
    }
    obj = decode(body_of(f"{META}.DeleteOptions", options, "DeleteOptions", api_version))
    assert obj == {"kind": "DeleteOptions", "apiVersion": api_version, **options}


def test_json_content_inside_the_envelope() -> None:
    obj = decode(envelope(b'{"metadata":{"name":"demo"}}', content_type="application/json"))
    assert obj == {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "demo"}}


def test_invalid_utf8_becomes_replacement_characters_as_in_go_json() -> None:
    obj = decode(envelope(lfield(1, lfield(1, b"a\xffb")), "Namespace"))
    assert obj["metadata"]["name"] == "a\ufffdb"


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "magic"),
        (b'{"kind":"Namespace"}', "magic"),
        (b"k8s\x01" + lfield(1, b""), "magic"),
        (MAGIC + b"\x0a", "varint is truncated"),
        (MAGIC + b"\x0a\xff", "varint is truncated"),
        (MAGIC + b"\x0a" + b"\xff" * 11, "longer than 10 bytes"),
        (MAGIC + b"\x0a\x05ab", "is 5 bytes long but only 2 remain"),
        (MAGIC + b"\x09\x01\x02", "fixed64 value of field 1 is truncated"),
        (MAGIC + b"\x0b", "unsupported wire type 3"),
        (MAGIC + b"\x02\x00", "number 0"),
        (MAGIC + vfield(1, 5), "wire type 0, expected 2"),
        (MAGIC + lfield(2, b""), "no apiVersion or kind"),
        (envelope(b"", kind="Secret"), "kind 'Secret' of apiVersion 'v1' is not one Skiff decodes"),
        (envelope(b"", kind="Deployment", api_version="apps/v1beta1"), "not one Skiff decodes"),
        (envelope(b"", kind="PodSpec"), "not one Skiff decodes"),
        (envelope(b"", content_encoding="gzip"), "contentEncoding 'gzip' is not supported"),
        (envelope(b"", content_type="application/yaml"), "contentType 'application/yaml' is not supported"),
        (envelope(b"{", content_type="application/json"), "not valid JSON"),
        (envelope(b"[]", content_type="application/json"), "not an object"),
        (envelope(vfield(1, 3)), "field 'metadata' (1) has wire type 0, expected 2"),
        (envelope(lfield(1, vfield(1, 3))), "field 'name' (1) has wire type 0, expected 2"),
        (envelope(lfield(1, lfield(7, b"\x01"))), "field 'generation' (7) has wire type 2, expected 0"),
        (envelope(lfield(1, lfield(11, vfield(1, 1)))), "field 'labels' (11) key has wire type 0, expected 2"),
        (envelope(lfield(1, tag(11, 0) + varint(1))), "field 'labels' (11) has wire type 0, expected 2"),
        (envelope(lfield(1, lfield(8, lfield(1, b"")))), "timestamp field has wire type 2, expected 0"),
        (envelope(lfield(1, lfield(8, vfield(1, 2**62)))), "out of range"),
        (envelope(lfield(1, lfield(17, lfield(7, lfield(1, b"{")))), "ConfigMap"), "FieldsV1 is not valid JSON"),
        (envelope(lfield(2, lfield(14, lfield(4, b"\x80"))), "Pod"), "varint is truncated"),
        (envelope(lfield(2, lfield(2, vfield(8, 1))), "Pod"), "field 'resources' (8) has wire type 0, expected 2"),
    ],
)
def test_invalid_bodies_are_bad_requests(body: bytes, detail: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode(body)
    assert caught.value.code == 400
    assert caught.value.message.startswith("the request body is not valid Kubernetes protobuf: ")
    assert detail in caught.value.message


def test_nesting_is_bounded() -> None:
    raw_extension_kind = "k8s.io.apimachinery.pkg.runtime.RawExtension"
    assert raw_extension_kind in TABLE
    body = envelope(b"", "Namespace")
    # a FieldsV1 carrying a whole protobuf object, nested deeper and deeper
    for _ in range(70):
        managed = lfield(7, lfield(1, body))
        body = envelope(lfield(1, lfield(17, managed)), "ConfigMap")
    with pytest.raises(BadRequest, match="nested too deeply"):
        decode(body)


# --- regenerating the fixtures -------------------------------------------------------------------


def _write_fixtures() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, command in CAPTURES.items():
        content_type, body, printed = capture(command)
        assert content_type == "application/vnd.kubernetes.protobuf", (name, content_type)
        (FIXTURES / f"{name}.bin").write_bytes(body)
        (FIXTURES / f"{name}.json").write_text(json.dumps(printed, indent=2) + "\n")
        print(f"{name}: {len(body)} bytes from kubectl {' '.join(command)}")
    with _kubectl_env() as (work, _):
        split = RUN_POD.index("--")
        pod = _kubectl(work, *RUN_POD[:split], "--dry-run=client", "-o", "json", *RUN_POD[split:])
    assert pod.returncode == 0, pod.stderr
    (FIXTURES / "pod.json").write_text(json.dumps(json.loads(pod.stdout), indent=2) + "\n")


if __name__ == "__main__" and "--capture" in sys.argv:
    _write_fixtures()
