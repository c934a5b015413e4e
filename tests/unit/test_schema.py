"""Tests of the generated schemas and of the decode / strict-field checks built on them."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.types import registry
from chalicelib.types.schema import (
    all_schemas,
    decode_errors,
    decode_failure_message,
    ref_name,
    schema,
    strict_error_detail,
    unknown_fields,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"


def _pod_spec() -> dict[str, Any]:
    return {
        "serviceAccountName": "web",
        "terminationGracePeriodSeconds": 30,
        "nodeSelector": {"kubernetes.io/os": "linux", "disk": "ssd"},
        "securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 2000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
        "containers": [{
            "name": "web",
            "image": "nginx:1.27",
            "imagePullPolicy": "IfNotPresent",
            "args": ["--port", "8080"],
            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "env": [
                {"name": "PLAIN", "value": "1"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k",
                                                                      "optional": True}}},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                   "divisor": "1Mi"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                          "limits": {"cpu": 1, "memory": "128Mi", "nvidia.com/gpu": "1"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP",
                                          "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                              "initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "timeoutSeconds": 2},
            "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}},
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
            "volumeMounts": [{"name": "data", "mountPath": "/data"},
                             {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}],
            "securityContext": {"allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True},
        }],
        "volumes": [
            {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420,
                                          "items": [{"key": "k", "path": "k.txt"}]}},
            {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
            {"name": "token", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
        ],
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "topologyKey": "kubernetes.io/hostname"}}]},
        },
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"},
                        {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                         "effect": "NoExecute", "tolerationSeconds": 300}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": {"app": "web"}}}],
        "imagePullSecrets": [{"name": "registry"}],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}],
        "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
    }


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default",
                     "labels": {"app": "web", "app.kubernetes.io/part-of": "shop"},
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}",
                                     "example.com/anything goes": "yes"}},
        "spec": {
            "replicas": 3,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app": "web"},
                         "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": _pod_spec()},
        },
        "status": {"replicas": 3, "observedGeneration": 2,
                   "conditions": [{"type": "Available", "status": "True",
                                   "lastUpdateTime": "2024-05-01T10:00:00Z",
                                   "lastTransitionTime": "2024-05-01T10:00:00Z"}]},
    }


def _pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-x",
                                              "uid": "1234", "controller": True}],
                         "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                            "apiVersion": "v1", "time": "2024-05-01T10:00:00Z",
                                            "fieldsType": "FieldsV1",
                                            "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}],
                         "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": _pod_spec(),
            "status": {"phase": "Running", "podIP": "10.1.2.3", "podIPs": [{"ip": "10.1.2.3"}],
                       "startTime": "2024-05-01T10:00:01Z",
                       "containerStatuses": [{"name": "web", "image": "nginx", "imageID": "", "ready": True,
                                              "restartCount": 0, "started": True,
                                              "state": {"running": {"startedAt": "2024-05-01T10:00:02Z"}}}]}}


# -- the generated file ----------------------------------------------------------------------------

def test_schemas_cover_every_registry_resource_and_meta_type() -> None:
    schemas = all_schemas()
    for res in registry.RESOURCES:
        assert res.schema_name in schemas, res.kind
        assert res.schema_name + "List" in schemas, res.list_kind
        gvks = schemas[res.schema_name]["x-kubernetes-group-version-kind"]
        assert gvks == [{"group": res.group, "kind": res.kind, "version": res.version}]
        assert schemas[res.schema_name + "List"]["x-kubernetes-group-version-kind"][0]["kind"] == res.list_kind
    for name in ("ObjectMeta", "ListMeta", "Status", "StatusDetails", "StatusCause", "OwnerReference",
                 "LabelSelector", "LabelSelectorRequirement", "Time", "MicroTime", "ManagedFieldsEntry",
                 "FieldsV1", "DeleteOptions", "Preconditions", "WatchEvent", "Patch", "Condition"):
        assert f"io.k8s.apimachinery.pkg.apis.meta.v1.{name}" in schemas, name
    assert schemas["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"] == [
        {"group": "autoscaling", "kind": "Scale", "version": "v1"}]
    assert "io.k8s.api.core.v1.Binding" in schemas
    assert "io.k8s.api.core.v1.PodTemplateSpec" in schemas  # core, although first met under apps


def test_every_reference_resolves_and_names_are_canonical() -> None:
    schemas = all_schemas()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            name = ref_name(node)
            if "$ref" in node:
                assert name in schemas, node["$ref"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schemas)
    prefixes = ("io.k8s.api.core.v1.", "io.k8s.api.apps.v1.", "io.k8s.api.coordination.v1.",
                "io.k8s.api.autoscaling.v1.", "io.k8s.apimachinery.pkg.", "io.skiff.v1.")
    assert all(name.startswith(prefixes) for name in schemas)


def test_special_types_and_descriptions() -> None:
    quantity = schema("io.k8s.apimachinery.pkg.api.resource.Quantity")
    assert {"type": "string"} in quantity["oneOf"] and {"type": "number"} in quantity["oneOf"]
    int_or_string = schema("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
    assert int_or_string["x-kubernetes-int-or-string"] is True
    container = schema("io.k8s.api.core.v1.Container")
    assert container["required"] == ["name"]
    assert container["properties"]["image"]["description"].startswith("Container image name")
    assert container["properties"]["env"]["x-kubernetes-patch-merge-key"] == "name"
    limits = schema("io.k8s.api.core.v1.ResourceRequirements")["properties"]["limits"]
    assert limits["additionalProperties"]["$ref"].endswith("resource.Quantity")
    lease = schema("io.k8s.api.coordination.v1.LeaseSpec")["properties"]
    assert lease["renewTime"]["$ref"].endswith("meta.v1.MicroTime")
    assert schema("io.k8s.api.core.v1.PodSpec")["properties"]["terminationGracePeriodSeconds"]["format"] == "int64"
    with pytest.raises(KeyError):
        schema("io.k8s.api.core.v1.NoSuchThing")


def test_committed_file_matches_the_generator() -> None:
    spec = importlib.util.spec_from_file_location("gen_schemas", ROOT / "tools" / "gen_schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "chalicelib" / "types" / "schemas.json").read_text(encoding="utf-8")
    assert module.build() == committed, "schemas.json is stale: run .venv/bin/python tools/gen_schemas.py"


# -- valid objects -----------------------------------------------------------------------------------

def test_valid_deployment_and_pod_pass_both_checks() -> None:
    for obj, name in ((_deployment(), DEPLOYMENT), (_pod(), POD)):
        assert unknown_fields(obj, name) == []
        assert decode_errors(obj, name) == []


def test_other_kinds_pass_both_checks() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
          "data": {"any.key-at_all": "x", "config.yaml": "a: 1\n"},
          "binaryData": {"blob": "aGVsbG8gd29ybGQ="}, "immutable": False}, "io.k8s.api.core.v1.ConfigMap"),
        ({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
          "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15,
                   "renewTime": "2024-05-01T10:00:00.123456Z"}}, "io.k8s.api.coordination.v1.Lease"),
        ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
          "spec": {"type": "ClusterIP", "selector": {"app": "web"},
                   "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}},
         "io.k8s.api.core.v1.Service"),
        ({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "labels": {"node-role": ""}},
          "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
          "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                     "conditions": [{"type": "Ready", "status": "True",
                                     "lastHeartbeatTime": "2024-05-01T10:00:00Z"}]}},
         "io.k8s.api.core.v1.Node"),
        ({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
          "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started", "count": 2,
          "eventTime": "2024-05-01T10:00:00.000000Z", "firstTimestamp": "2024-05-01T10:00:00Z"},
         "io.k8s.api.core.v1.Event"),
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"},
          "spec": {"finalizers": ["kubernetes"]}}, "io.k8s.api.core.v1.Namespace"),
        ({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
          "spec": {"replicas": 4}}, "io.k8s.api.autoscaling.v1.Scale"),
        ({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
          "target": {"kind": "Node", "name": "n"}}, "io.k8s.api.core.v1.Binding"),
    ]
    for obj, name in cases:
        assert unknown_fields(obj, name) == [], name
        assert decode_errors(obj, name) == [], name


# -- unknown fields ----------------------------------------------------------------------------------

def test_misspelled_field_is_reported_with_its_path() -> None:
    pod = _pod()
    pod["spec"]["containers"][0]["imagee"] = "nginx"
    assert unknown_fields(pod, POD) == ["spec.containers[0].imagee"]
    dep = _deployment()
    dep["spec"]["template"]["spec"]["containers"][0]["imagee"] = "nginx"
    dep["spec"]["foo"] = 1
    dep["metadata"]["nmae"] = "x"
    dep["spec"]["template"]["spec"]["volumes"][1]["configMap"]["items"][0]["mode"] = 256
    dep["spec"]["template"]["spec"]["volumes"][1]["configMap"]["items"][0]["bogus"] = 1
    assert unknown_fields(dep, DEPLOYMENT) == [
        "metadata.nmae",
        "spec.template.spec.containers[0].imagee",
        "spec.template.spec.volumes[1].configMap.items[0].bogus",
        "spec.foo",
    ]
    assert decode_errors(dep, DEPLOYMENT) == []  # unknown fields do not break decoding


def test_unknown_field_names_are_case_sensitive_and_status_is_checked_too() -> None:
    dep = _deployment()
    dep["Spec"] = dep.pop("spec")
    dep["status"]["replica"] = 1
    assert unknown_fields(dep, DEPLOYMENT) == ["status.replica", "Spec"]


def test_maps_take_any_key_and_free_form_objects_are_not_inspected() -> None:
    pod = _pod()
    pod["metadata"]["labels"]["weird/key.with-chars_9"] = "v"
    pod["metadata"]["annotations"] = {"a" * 60: "b", "x.y/z": ""}
    pod["spec"]["nodeSelector"]["topology.kubernetes.io/zone"] = "a"
    pod["spec"]["containers"][0]["resources"]["limits"]["example.com/dongle"] = 2
    pod["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"] = {"f:anything": {}}
    assert unknown_fields(pod, POD) == []


def test_wrongly_typed_values_are_left_to_decode_errors() -> None:
    pod = _pod()
    pod["spec"]["containers"] = {"imagee": "x"}
    assert unknown_fields(pod, POD) == []


def test_strict_error_wording() -> None:
    detail = strict_error_detail(["spec.foo", "spec.template.spec.containers[0].imagee"])
    assert detail == ('strict decoding error: unknown field "spec.foo", '
                      'unknown field "spec.template.spec.containers[0].imagee"')
    assert decode_failure_message("Deployment", "v1", detail) == (
        'Deployment in version "v1" cannot be handled as a Deployment: ' + detail)


# -- decode errors -----------------------------------------------------------------------------------

def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    node: Any = obj
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return obj


@pytest.mark.parametrize(("path", "value", "message"), [
    ("spec.replicas", "3",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("spec.replicas", 1.5,
     "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("spec.replicas", 2**31,
     "json: cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("spec.replicas", True,
     "json: cannot unmarshal bool into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("spec.template.spec.containers.0.env.0.value", 1,
     "json: cannot unmarshal number into Go struct field EnvVar.spec.template.spec.containers.env.value "
     "of type string"),
    ("spec.template.spec.containers", {"name": "web"},
     "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers "
     "of type []v1.Container"),
    ("spec.template.spec.imagePullSecrets", ["registry"],
     "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec.imagePullSecrets "
     "of type v1.LocalObjectReference"),
    ("spec.template.spec.hostNetwork", "true",
     "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec.hostNetwork of type bool"),
    ("spec.template.spec.containers.0.args", "--port",
     "json: cannot unmarshal string into Go struct field Container.spec.template.spec.containers.args "
     "of type []string"),
    ("metadata.labels", {"app": 1},
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
    ("metadata.labels", ["app"],
     "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
    ("spec.template", "pod",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.template of type v1.PodTemplateSpec"),
    ("spec.template.spec.terminationGracePeriodSeconds", "30",
     "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec.terminationGracePeriodSeconds "
     "of type int64"),
    ("spec.template.spec.containers.0.resources.limits", {"cpu": "lots"},
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("spec.template.spec.containers.0.resources.limits", {"memory": "1Qb"},
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("spec.template.spec.containers.0.resources.limits", {"memory": "1ki"},
     "unable to parse quantity's suffix"),
    ("spec.template.spec.containers.0.livenessProbe.httpGet.port", 80.5,
     "json: cannot unmarshal number 80.5 into Go value of type int32"),
    ("spec.strategy.rollingUpdate.maxSurge", True,
     "json: cannot unmarshal bool into Go value of type int32"),
    ("status.conditions.0.lastUpdateTime", "yesterday",
     'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"'),
    ("status.conditions.0.lastUpdateTime", 1700000000,
     "json: cannot unmarshal number into Go value of type string"),
])
def test_decode_errors_word_like_kube_apiserver(path: str, value: Any, message: str) -> None:
    assert decode_errors(_with(_deployment(), path, value), DEPLOYMENT) == [message]


def test_decode_accepts_null_and_both_forms_of_int_or_string_and_quantity() -> None:
    dep = _with(_deployment(), "spec.replicas", None)
    dep = _with(dep, "spec.template.spec.containers.0.livenessProbe.httpGet.port", "http")
    dep = _with(dep, "spec.template.spec.containers.0.resources.requests", {"cpu": 0.5, "memory": "1e9"})
    dep = _with(dep, "metadata.labels", None)
    assert decode_errors(dep, DEPLOYMENT) == []


def test_micro_time_and_bytes_are_checked() -> None:
    lease = {"spec": {"renewTime": "2024-05-01T10:00:00Z"}}
    assert decode_errors(lease, "io.k8s.api.coordination.v1.Lease") == [
        'parsing time "2024-05-01T10:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": '
        'cannot parse "Z" as ".000000"']
    cm = {"binaryData": {"blob": "not*base64"}}
    assert decode_errors(cm, "io.k8s.api.core.v1.ConfigMap") == ["illegal base64 data at input byte 3"]


def test_all_errors_are_listed_in_document_order() -> None:
    dep = _with(_deployment(), "spec.replicas", "3")
    dep = _with(dep, "metadata.name", 7)
    assert [e.split(" of type")[0].rsplit(" ", 1)[-1] for e in decode_errors(dep, DEPLOYMENT)] == [
        "ObjectMeta.metadata.name", "DeploymentSpec.spec.replicas"]


def test_schema_file_is_compact() -> None:
    text = (ROOT / "chalicelib" / "types" / "schemas.json").read_text(encoding="utf-8")
    assert "\n " not in text and len(text) < 600_000
    skiff = json.loads((ROOT / "chalicelib" / "types" / "skiff_schemas.json").read_text(encoding="utf-8"))
    assert {**json.loads(text), **skiff} == all_schemas()
