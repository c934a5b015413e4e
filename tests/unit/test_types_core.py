"""core/v1 defaults and validation: Pod, Namespace, Node, Event, ConfigMap, Service."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.errors import Cause
from chalicelib.types import core
from chalicelib.types import fields as f

Obj = dict[str, Any]
PORT_RANGE = "must be between 1 and 65535, inclusive"
NONNEG = "must be greater than or equal to 0"


def triples(causes: list[Cause]) -> list[tuple[str, str, str]]:
    return [(c.field, c.reason, c.message) for c in causes]


def fields_of(causes: list[Cause]) -> list[str]:
    return [c.field for c in causes]


def make_pod(**spec: Any) -> Obj:
    base: Obj = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    base.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": base,
    }


def defaulted(pod: Obj) -> Obj:
    core.default_pod(pod)
    return pod


def container(**kw: Any) -> Obj:
    return {"name": "app", "image": "nginx:1.25", **kw}


def validate(pod: Obj) -> list[Cause]:
    return core.validate_pod(defaulted(pod), None)


# --- Pod defaults ---


def test_fresh_pod_defaults() -> None:
    pod = defaulted(make_pod(containers=[{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]))
    assert pod["spec"] == {
        "containers": [
            {
                "name": "web",
                "image": "nginx",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "imagePullPolicy": "Always",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "resources": {},
            }
        ],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
        "priority": 0,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    assert "tolerations" not in pod["spec"] and "serviceAccountName" not in pod["spec"]


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("library/nginx", "Always"),
        ("registry.example.com:5000/team/nginx", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("registry.example.com:5000/nginx:1.0", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
        ("Nginx", "IfNotPresent"),
        ("nginx:", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("registry.example.com/Team/nginx", "IfNotPresent"),
        ("", "IfNotPresent"),
    ],
)
def test_image_pull_policy_default(image: str, policy: str) -> None:
    pod = defaulted(
        make_pod(containers=[{"name": "a", "image": image}], initContainers=[{"name": "i", "image": image}])
    )
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy
    assert pod["spec"]["initContainers"][0]["imagePullPolicy"] == policy


def test_explicit_values_are_kept() -> None:
    spec = {
        "restartPolicy": "Never",
        "dnsPolicy": "Default",
        "terminationGracePeriodSeconds": 0,
        "schedulerName": "mine",
        "enableServiceLinks": False,
        "containers": [container(imagePullPolicy="Never", terminationMessagePolicy="FallbackToLogsOnError")],
    }
    pod = defaulted(make_pod(**spec))
    for k, v in spec.items():
        if k != "containers":
            assert pod["spec"][k] == v
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_probe_and_hook_defaults() -> None:
    c = container(
        livenessProbe={"httpGet": {"port": 8080}},
        readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 5},
        lifecycle={"preStop": {"httpGet": {"port": 80, "path": "/stop"}}},
    )
    c = defaulted(make_pod(containers=[c]))["spec"]["containers"][0]
    assert c["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["readinessProbe"]["periodSeconds"] == 5
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/stop", "scheme": "HTTP"}


def test_requests_default_to_limits_for_pods_only() -> None:
    resources = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}
    c = defaulted(make_pod(containers=[container(resources=resources)]))["spec"]["containers"][0]
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    init = defaulted(make_pod(initContainers=[container(name="i", resources={"limits": {"cpu": "1"}})]))
    assert init["spec"]["initContainers"][0]["resources"]["requests"] == {"cpu": "1"}


def test_env_and_volume_defaults() -> None:
    env = [
        {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "B", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    ]
    volumes = [
        {"name": "scratch"},
        {"name": "cache", "emptyDir": None},
        {"name": "cfg", "configMap": {"name": "c"}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
        {"name": "host", "hostPath": {"path": "/var"}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "pvc"}},
        {"name": "odd", "unknownSource": {}},
    ]
    spec = defaulted(make_pod(containers=[container(env=env)], volumes=volumes))["spec"]
    assert spec["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert spec["containers"][0]["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"
    assert spec["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cache", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
        {"name": "host", "hostPath": {"path": "/var", "type": ""}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "pvc"}},
        {"name": "odd", "unknownSource": {}, "emptyDir": {}},
    ]


def test_host_network_copies_container_ports() -> None:
    c = container(ports=[{"containerPort": 8080}, {"containerPort": 53, "hostPort": 53, "protocol": "UDP"}])
    spec = defaulted(make_pod(hostNetwork=True, containers=[c]))["spec"]
    assert [p["hostPort"] for p in spec["containers"][0]["ports"]] == [8080, 53]


def test_pod_defaults_are_idempotent() -> None:
    pod = make_pod(
        containers=[container(livenessProbe={"exec": {"command": ["true"]}}, resources={"limits": {"cpu": "1"}})],
        volumes=[{"name": "v"}],
    )
    once = copy.deepcopy(defaulted(pod))
    assert defaulted(pod) == once


@pytest.mark.parametrize(
    "spec",
    [
        None,
        "x",
        {"containers": "x"},
        {"containers": ["x", {"ports": {"a": 1}, "env": 5, "livenessProbe": 3}]},
        {"volumes": [1, {"name": "v", "configMap": "x"}]},
        {"containers": [{"resources": {"limits": "x"}}]},
    ],
)
def test_defaults_never_crash(spec: Any) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    core.default_pod(pod)
    core.initial_pod_status(pod)
    core.validate_pod(pod, None)


@pytest.mark.parametrize(
    ("containers", "qos"),
    [
        ([container()], "BestEffort"),
        ([container(resources={"requests": {"cpu": "100m"}})], "Burstable"),
        ([container(resources={"limits": {"cpu": "1", "memory": "1Gi"}})], "Guaranteed"),
        (
            [
                container(
                    resources={
                        "limits": {"cpu": "1", "memory": "1Gi"},
                        "requests": {"cpu": "1", "memory": "1Gi"},
                    }
                )
            ],
            "Guaranteed",
        ),
        (
            [container(resources={"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})],
            "Burstable",
        ),
        ([container(resources={"limits": {"cpu": "1"}})], "Burstable"),
        ([container(resources={"limits": {"cpu": "1", "memory": "1Gi"}}), container(name="b")], "Burstable"),
        ([container(resources={"requests": {"cpu": "0"}})], "BestEffort"),
        ([container(resources={"requests": {"example.com/gpu": "1"}})], "BestEffort"),
    ],
)
def test_initial_pod_status(containers: list[Obj], qos: str) -> None:
    pod = make_pod(containers=containers)
    assert core.initial_pod_status(pod) == {"phase": "Pending", "qosClass": qos}
    assert core.initial_pod_status(defaulted(pod))["qosClass"] == qos


def test_init_containers_count_for_qos() -> None:
    full = {"limits": {"cpu": "1", "memory": "1Gi"}}
    pod = make_pod(containers=[container(resources=full)], initContainers=[container(name="i")])
    assert core.initial_pod_status(pod)["qosClass"] == "Burstable"


# --- Pod validation ---


def test_valid_pod() -> None:
    pod = make_pod(
        containers=[
            container(
                ports=[
                    {"name": "http", "containerPort": 80},
                    {"containerPort": 53, "protocol": "UDP", "hostPort": 0},
                ],
                env=[
                    {"name": "1_weird.name-ok", "value": "x"},
                    {"name": "N", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                ],
                resources={
                    "requests": {"cpu": "250m", "memory": "64Mi", "ephemeral-storage": "1Gi"},
                    "limits": {"cpu": "1", "memory": "128Mi", "example.com/gpu": "2"},
                },
                volumeMounts=[{"name": "data", "mountPath": "/data", "subPath": "a/b"}],
                livenessProbe={"httpGet": {"port": "http"}},
                readinessProbe={"grpc": {"port": 9090}},
            )
        ],
        initContainers=[
            container(name="sidecar", restartPolicy="Always", startupProbe={"exec": {"command": ["x"]}}),
            container(name="setup"),
        ],
        volumes=[{"name": "data"}, {"name": "cfg", "configMap": {"name": "c"}}],
        nodeSelector={"kubernetes.io/os": "linux"},
        tolerations=[
            {"operator": "Exists"},
            {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
            {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        ],
        activeDeadlineSeconds=60,
        terminationGracePeriodSeconds=0,
        hostname="web-0",
        subdomain="web",
    )
    assert validate(pod) == []


CASES: list[tuple[str, Callable[[Obj], None], list[tuple[str, str, str]]]] = [
    ("no containers", lambda s: s.update(containers=[]), [("spec.containers", f.REQUIRED, "Required value")]),
    (
        "missing image",
        lambda s: s["containers"][0].pop("image"),
        [("spec.containers[0].image", f.REQUIRED, "Required value")],
    ),
    (
        "image whitespace",
        lambda s: s["containers"][0].update(image=" nginx"),
        [
            (
                "spec.containers[0].image",
                f.INVALID,
                'Invalid value: " nginx": must not have leading or trailing whitespace',
            )
        ],
    ),
    (
        "missing name",
        lambda s: s["containers"][0].pop("name"),
        [("spec.containers[0].name", f.REQUIRED, "Required value")],
    ),
    (
        "duplicate across init",
        lambda s: s.update(initContainers=[container()]),
        [("spec.initContainers[0].name", f.DUPLICATE, 'Duplicate value: "app"')],
    ),
    (
        "duplicate containers",
        lambda s: s["containers"].append(container()),
        [("spec.containers[1].name", f.DUPLICATE, 'Duplicate value: "app"')],
    ),
    (
        "port zero",
        lambda s: s["containers"][0].update(ports=[{"containerPort": 0}]),
        [("spec.containers[0].ports[0].containerPort", f.REQUIRED, "Required value")],
    ),
    (
        "port missing",
        lambda s: s["containers"][0].update(ports=[{"name": "http"}]),
        [("spec.containers[0].ports[0].containerPort", f.REQUIRED, "Required value")],
    ),
    (
        "port too big",
        lambda s: s["containers"][0].update(ports=[{"containerPort": 65536}]),
        [("spec.containers[0].ports[0].containerPort", f.INVALID, f"Invalid value: 65536: {PORT_RANGE}")],
    ),
    (
        "host port",
        lambda s: s["containers"][0].update(ports=[{"containerPort": 1, "hostPort": -1}]),
        [("spec.containers[0].ports[0].hostPort", f.INVALID, f"Invalid value: -1: {PORT_RANGE}")],
    ),
    (
        "protocol",
        lambda s: s["containers"][0].update(ports=[{"containerPort": 1, "protocol": "HTTP"}]),
        [
            (
                "spec.containers[0].ports[0].protocol",
                f.NOT_SUPPORTED,
                'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
            )
        ],
    ),
    (
        "port name digits",
        lambda s: s["containers"][0].update(ports=[{"containerPort": 1, "name": "8080"}]),
        [
            (
                "spec.containers[0].ports[0].name",
                f.INVALID,
                'Invalid value: "8080": must contain at least one letter (a-z)',
            )
        ],
    ),
    (
        "port name long",
        lambda s: s["containers"][0].update(ports=[{"containerPort": 1, "name": "a" * 16}]),
        [
            (
                "spec.containers[0].ports[0].name",
                f.INVALID,
                f'Invalid value: "{"a" * 16}": must be no more than 15 characters',
            )
        ],
    ),
    (
        "port name dup",
        lambda s: s["containers"][0].update(
            ports=[{"containerPort": 1, "name": "web"}, {"containerPort": 2, "name": "web"}]
        ),
        [("spec.containers[0].ports[1].name", f.DUPLICATE, 'Duplicate value: "web"')],
    ),
    (
        "host port conflict",
        lambda s: s["containers"].append(container(name="b", ports=[{"containerPort": 80, "hostPort": 80}]))
        or s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
        [("spec.containers[1].ports[0].hostPort", f.DUPLICATE, 'Duplicate value: "/TCP/80"')],
    ),
    (
        "restart policy",
        lambda s: s.update(restartPolicy="Sometimes"),
        [
            (
                "spec.restartPolicy",
                f.NOT_SUPPORTED,
                'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
            )
        ],
    ),
    (
        "pull policy",
        lambda s: s["containers"][0].update(imagePullPolicy="Maybe"),
        [
            (
                "spec.containers[0].imagePullPolicy",
                f.NOT_SUPPORTED,
                'Unsupported value: "Maybe": supported values: "Always", "IfNotPresent", "Never"',
            )
        ],
    ),
    (
        "cpu unparseable",
        lambda s: s["containers"][0].update(resources={"limits": {"cpu": "lots"}}),
        [
            (
                "spec.containers[0].resources.limits[cpu]",
                f.INVALID,
                'Invalid value: "lots": quantities must match the regular expression '
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            )
        ],
    ),
    (
        "memory negative",
        lambda s: s["containers"][0].update(resources={"requests": {"memory": "-1Mi"}}),
        [("spec.containers[0].resources.requests[memory]", f.INVALID, f'Invalid value: "-1Mi": {NONNEG}')],
    ),
    (
        "storage suffix",
        lambda s: s["containers"][0].update(resources={"requests": {"ephemeral-storage": "1Zi"}}),
        [
            (
                "spec.containers[0].resources.requests[ephemeral-storage]",
                f.INVALID,
                'Invalid value: "1Zi": quantities must match the regular expression '
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            )
        ],
    ),
    (
        "requests over limits",
        lambda s: s["containers"][0].update(
            resources={"requests": {"cpu": "1500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
        ),
        [
            (
                "spec.containers[0].resources.requests",
                f.INVALID,
                'Invalid value: "1500m": must be less than or equal to cpu limit of 1',
            )
        ],
    ),
    (
        "unknown resource",
        lambda s: s["containers"][0].update(resources={"limits": {"gpu": "1"}}),
        # Defaulting copied the limit into requests, so both report it (as upstream).
        [
            (f"spec.containers[0].resources.{part}[gpu]", f.INVALID, f'Invalid value: "gpu": {msg}')
            for part in ("limits", "requests")
            for msg in (
                "must be a standard resource type or fully qualified",
                "must be a standard resource for containers",
            )
        ],
    ),
    (
        "extended needs limit",
        lambda s: s["containers"][0].update(resources={"requests": {"example.com/gpu": "1"}}),
        [
            (
                "spec.containers[0].resources.limits",
                f.REQUIRED,
                "Required value: Limit must be set for non overcommitable resources",
            )
        ],
    ),
    (
        "extended must equal",
        lambda s: s["containers"][0].update(
            resources={"requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "2"}}
        ),
        [
            (
                "spec.containers[0].resources.requests",
                f.INVALID,
                'Invalid value: "1": must be equal to example.com/gpu limit of 2',
            )
        ],
    ),
    (
        "extended integer",
        lambda s: s["containers"][0].update(resources={"limits": {"example.com/gpu": "500m"}}),
        [
            (
                f"spec.containers[0].resources.{part}[example.com/gpu]",
                f.INVALID,
                'Invalid value: "500m": must be an integer',
            )
            for part in ("limits", "requests")
        ],
    ),
    (
        "env name empty",
        lambda s: s["containers"][0].update(env=[{"name": "", "value": "x"}]),
        [
            ("spec.containers[0].env[0].name", f.REQUIRED, "Required value"),
            (
                "spec.containers[0].env[0].name",
                f.INVALID,
                'Invalid value: "": environment variable name must be non-empty',
            ),
        ],
    ),
    (
        "env name equals",
        lambda s: s["containers"][0].update(env=[{"name": "A=B"}]),
        [
            (
                "spec.containers[0].env[0].name",
                f.INVALID,
                'Invalid value: "A=B": a valid environment variable name must '
                "consist only of printable ASCII characters other than '='",
            )
        ],
    ),
    (
        "env no source",
        lambda s: s["containers"][0].update(env=[{"name": "A", "valueFrom": {}}]),
        [
            (
                "spec.containers[0].env[0].valueFrom",
                f.INVALID,
                'Invalid value: "": must specify one of: `fieldRef`, '
                "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )
        ],
    ),
    (
        "env value and source",
        lambda s: s["containers"][0].update(
            env=[{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
        ),
        [
            (
                "spec.containers[0].env[0].valueFrom",
                f.INVALID,
                'Invalid value: "": may not be specified when `value` is not empty',
            )
        ],
    ),
    (
        "env field path",
        lambda s: s["containers"][0].update(env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}}]),
        [
            (
                "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
                f.NOT_SUPPORTED,
                'Unsupported value: "spec.foo": supported values: '
                '"metadata.name", "metadata.namespace", "metadata.uid", '
                '"spec.nodeName", "spec.serviceAccountName", '
                '"status.hostIP", "status.hostIPs", "status.podIP", '
                '"status.podIPs"',
            )
        ],
    ),
    (
        "mount unknown volume",
        lambda s: s["containers"][0].update(volumeMounts=[{"name": "data", "mountPath": "/d"}]),
        [("spec.containers[0].volumeMounts[0].name", f.NOT_FOUND, 'Not found: "data"')],
    ),
    (
        "mount path",
        lambda s: s.update(volumes=[{"name": "v"}])
        or s["containers"][0].update(
            volumeMounts=[{"name": "v"}, {"name": "v", "mountPath": "/a"}, {"name": "v", "mountPath": "/a"}]
        ),
        [
            ("spec.containers[0].volumeMounts[0].mountPath", f.REQUIRED, "Required value"),
            (
                "spec.containers[0].volumeMounts[2].mountPath",
                f.INVALID,
                'Invalid value: "/a": must be unique',
            ),
        ],
    ),
    (
        "sub path",
        lambda s: s.update(volumes=[{"name": "v"}])
        or s["containers"][0].update(volumeMounts=[{"name": "v", "mountPath": "/a", "subPath": "../x"}]),
        [
            (
                "spec.containers[0].volumeMounts[0].subPath",
                f.INVALID,
                "Invalid value: \"../x\": must not contain '..'",
            )
        ],
    ),
    (
        "volume names",
        lambda s: s.update(volumes=[{"name": "v"}, {"name": "v"}, {"name": "Bad"}]),
        [
            ("spec.volumes[1].name", f.DUPLICATE, 'Duplicate value: "v"'),
            (
                "spec.volumes[2].name",
                f.INVALID,
                'Invalid value: "Bad": a lowercase RFC 1123 label must consist of lower '
                "case alphanumeric characters or '-', and must "
                "start and end with an alphanumeric character (e.g. "
                "'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ),
        ],
    ),
    (
        "two volume types",
        lambda s: s.update(volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}]),
        [("spec.volumes[0].emptyDir", f.FORBIDDEN, "Forbidden: may not specify more than 1 volume type")],
    ),
    (
        "config map volume",
        lambda s: s.update(volumes=[{"name": "v", "configMap": {"defaultMode": 1000}}]),
        [
            ("spec.volumes[0].configMap.name", f.REQUIRED, "Required value"),
            (
                "spec.volumes[0].configMap.defaultMode",
                f.INVALID,
                "Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
            ),
        ],
    ),
    (
        "mount of invalid volume",
        lambda s: s.update(volumes=[{"name": "v", "secret": {}}])
        or s["containers"][0].update(volumeMounts=[{"name": "v", "mountPath": "/s"}]),
        [
            ("spec.volumes[0].secret.secretName", f.REQUIRED, "Required value"),
            ("spec.containers[0].volumeMounts[0].name", f.NOT_FOUND, 'Not found: "v"'),
        ],
    ),
    (
        "probe without handler",
        lambda s: s["containers"][0].update(livenessProbe={"periodSeconds": 3}),
        [("spec.containers[0].livenessProbe", f.REQUIRED, "Required value: must specify a handler type")],
    ),
    (
        "probe two handlers",
        lambda s: s["containers"][0].update(readinessProbe={"exec": {"command": ["a"]}, "tcpSocket": {"port": 80}}),
        [
            (
                "spec.containers[0].readinessProbe.tcpSocket",
                f.FORBIDDEN,
                "Forbidden: may not specify more than 1 handler type",
            )
        ],
    ),
    (
        "probe fields",
        lambda s: s["containers"][0].update(
            livenessProbe={"httpGet": {"port": 0}, "successThreshold": 2, "periodSeconds": -1}
        ),
        [
            ("spec.containers[0].livenessProbe.httpGet.port", f.INVALID, f"Invalid value: 0: {PORT_RANGE}"),
            ("spec.containers[0].livenessProbe.periodSeconds", f.INVALID, f"Invalid value: -1: {NONNEG}"),
            ("spec.containers[0].livenessProbe.successThreshold", f.INVALID, "Invalid value: 2: must be 1"),
        ],
    ),
    (
        "probe exec command",
        lambda s: s["containers"][0].update(startupProbe={"exec": {}}),
        [("spec.containers[0].startupProbe.exec.command", f.REQUIRED, "Required value")],
    ),
    (
        "init probe",
        lambda s: s.update(initContainers=[container(name="i", readinessProbe={"exec": {"command": ["a"]}})]),
        [
            (
                "spec.initContainers[0].readinessProbe",
                f.FORBIDDEN,
                "Forbidden: may not be set for init containers without restartPolicy=Always",
            )
        ],
    ),
    (
        "init restart policy",
        lambda s: s.update(initContainers=[container(name="i", restartPolicy="Never")]),
        [
            (
                "spec.initContainers[0].restartPolicy",
                f.NOT_SUPPORTED,
                'Unsupported value: "Never": supported values: "Always"',
            )
        ],
    ),
    (
        "container restart policy",
        lambda s: s["containers"][0].update(restartPolicy="Always"),
        [
            (
                "spec.containers[0].restartPolicy",
                f.FORBIDDEN,
                "Forbidden: may not be set for non-init containers",
            )
        ],
    ),
    (
        "grace",
        lambda s: s.update(terminationGracePeriodSeconds=-1),
        [("spec.terminationGracePeriodSeconds", f.INVALID, f"Invalid value: -1: {NONNEG}")],
    ),
    (
        "deadline",
        lambda s: s.update(activeDeadlineSeconds=0),
        [
            (
                "spec.activeDeadlineSeconds",
                f.INVALID,
                "Invalid value: 0: must be between 1 and 2147483647, inclusive",
            )
        ],
    ),
    (
        "node selector",
        lambda s: s.update(nodeSelector={"bad key": "ok", "k": "bad value"}),
        [
            (
                "spec.nodeSelector",
                f.INVALID,
                'Invalid value: "bad key": name part must consist of alphanumeric characters, '
                "'-', '_' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ),
            (
                "spec.nodeSelector",
                f.INVALID,
                'Invalid value: "bad value": a valid label must be an empty string or consist '
                "of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (e.g. "
                "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
        ],
    ),
    (
        "node name",
        lambda s: s.update(nodeName="Node_1"),
        [
            (
                "spec.nodeName",
                f.INVALID,
                'Invalid value: "Node_1": a lowercase RFC 1123 subdomain must consist of lower '
                "case alphanumeric characters, '-' or '.', and must "
                "start and end with an alphanumeric character (e.g. "
                "'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
        ],
    ),
    (
        "toleration operator",
        lambda s: s.update(tolerations=[{"key": "k", "operator": "Like"}]),
        [
            (
                "spec.tolerations[0].operator",
                f.NOT_SUPPORTED,
                'Unsupported value: "Like": supported values: "Equal", "Exists"',
            )
        ],
    ),
    (
        "toleration effect",
        lambda s: s.update(tolerations=[{"operator": "Exists", "effect": "NoRun"}]),
        [
            (
                "spec.tolerations[0].effect",
                f.NOT_SUPPORTED,
                'Unsupported value: "NoRun": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
            )
        ],
    ),
    (
        "toleration empty key",
        lambda s: s.update(tolerations=[{"operator": "Equal", "value": "v"}]),
        [
            (
                "spec.tolerations[0].operator",
                f.INVALID,
                'Invalid value: "Equal": operator must be Exists when `key` is '
                'empty, which means "match all values and all keys"',
            )
        ],
    ),
    (
        "toleration exists value",
        lambda s: s.update(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]),
        [
            (
                "spec.tolerations[0].operator",
                f.INVALID,
                'Invalid value: {"Key":"k","Operator":"Exists","Value":"v",'
                '"Effect":"","TolerationSeconds":null}: value must be empty when `operator` is \'Exists\'',
            )
        ],
    ),
    (
        "toleration seconds",
        lambda s: s.update(tolerations=[{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]),
        [
            (
                "spec.tolerations[0].effect",
                f.INVALID,
                "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            )
        ],
    ),
    (
        "dns none",
        lambda s: s.update(dnsPolicy="None"),
        [("spec.dnsConfig", f.REQUIRED, "Required value: must provide `dnsConfig` when `dnsPolicy` is None")],
    ),
    (
        "host network ports",
        lambda s: s.update(hostNetwork=True)
        or s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 8080}]),
        [
            (
                "spec.containers[0].ports[0].containerPort",
                f.INVALID,
                "Invalid value: 80: must match `hostPort` when `hostNetwork` is true",
            )
        ],
    ),
    (
        "ephemeral",
        lambda s: s.update(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
        [("spec.ephemeralContainers", f.FORBIDDEN, "Forbidden: cannot be set on create")],
    ),
    (
        "containers a string",
        lambda s: s.update(containers="nginx"),
        [("spec.containers", f.TYPE_INVALID, 'Invalid value: "nginx": must be of type array')],
    ),
    (
        "container a string",
        lambda s: s.update(containers=["nginx"]),
        [("spec.containers[0]", f.TYPE_INVALID, 'Invalid value: "nginx": must be of type object')],
    ),
    (
        "ports a dict",
        lambda s: s["containers"][0].update(ports={"containerPort": 80}),
        [
            (
                "spec.containers[0].ports",
                f.TYPE_INVALID,
                'Invalid value: {"containerPort":80}: must be of type array',
            )
        ],
    ),
    (
        "port a string",
        lambda s: s["containers"][0].update(ports=[{"containerPort": "80"}]),
        [
            (
                "spec.containers[0].ports[0].containerPort",
                f.TYPE_INVALID,
                'Invalid value: "80": must be of type integer',
            )
        ],
    ),
    (
        "grace a string",
        lambda s: s.update(terminationGracePeriodSeconds="30"),
        [
            (
                "spec.terminationGracePeriodSeconds",
                f.TYPE_INVALID,
                'Invalid value: "30": must be of type integer',
            )
        ],
    ),
    (
        "resources a list",
        lambda s: s["containers"][0].update(resources=["cpu"]),
        [("spec.containers[0].resources", f.TYPE_INVALID, 'Invalid value: ["cpu"]: must be of type object')],
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in CASES], ids=[n for n, _, _ in CASES])
def test_pod_validation(mutate: Callable[[Obj], None], expected: list[tuple[str, str, str]]) -> None:
    pod = make_pod()
    mutate(pod["spec"])
    assert triples(validate(pod)) == expected


def test_many_bad_fields_at_once() -> None:
    pod = make_pod(
        restartPolicy="Sometimes",
        containers=[
            {
                "name": "Web",
                "ports": [{"containerPort": 0}, {"containerPort": 80, "protocol": "ICMP"}],
                "resources": {"limits": {"cpu": "1x"}},
                "volumeMounts": [{"name": "missing", "mountPath": "/m"}],
            },
            {"name": "Web", "image": "busybox", "env": [{"name": "A=1"}]},
        ],
        tolerations=[{"key": "k", "operator": "Sometimes"}],
    )
    assert set(triples(validate(pod))) == {
        (
            "spec.containers[0].name",
            f.INVALID,
            'Invalid value: "Web": a lowercase RFC 1123 label must consist of lower '
            "case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character (e.g. "
            "'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        ("spec.containers[0].image", f.REQUIRED, "Required value"),
        ("spec.containers[0].ports[0].containerPort", f.REQUIRED, "Required value"),
        (
            "spec.containers[0].ports[1].protocol",
            f.NOT_SUPPORTED,
            'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        ),
        ("spec.containers[0].volumeMounts[0].name", f.NOT_FOUND, 'Not found: "missing"'),
        (
            "spec.containers[0].resources.limits[cpu]",
            f.INVALID,
            'Invalid value: "1x": quantities must match the '
            "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            "spec.containers[1].name",
            f.INVALID,
            'Invalid value: "Web": a lowercase RFC 1123 label must consist of lower '
            "case alphanumeric characters or '-', and must "
            "start and end with an alphanumeric character (e.g. "
            "'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        ("spec.containers[1].name", f.DUPLICATE, 'Duplicate value: "Web"'),
        (
            "spec.containers[1].env[0].name",
            f.INVALID,
            'Invalid value: "A=1": a valid environment variable name must '
            "consist only of printable ASCII characters other than '='",
        ),
        (
            "spec.restartPolicy",
            f.NOT_SUPPORTED,
            'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        ),
        (
            "spec.tolerations[0].operator",
            f.NOT_SUPPORTED,
            'Unsupported value: "Sometimes": supported values: "Equal", "Exists"',
        ),
    }


def test_missing_spec() -> None:
    assert fields_of(core.validate_pod({"metadata": {"name": "p"}}, None)) == ["spec", "spec.containers"]


# --- Pod updates ---

FORBIDDEN_PREFIX = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing "
    "tolerations),`spec.terminationGracePeriodSeconds` (allow "
    "it to be set to 1 if it was previously negative)\n"
)


def update(mutate: Callable[[Obj], None], **spec: Any) -> list[Cause]:
    old = defaulted(make_pod(**spec))
    new = copy.deepcopy(old)
    mutate(new)
    return core.validate_pod(defaulted(new), old)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p["spec"]["containers"][0].update(image="nginx:1.26"),
        lambda p: p["metadata"].update(labels={"a": "b"}),
        lambda p: p["spec"].update(activeDeadlineSeconds=30),
        lambda p: p["spec"].update(terminationGracePeriodSeconds=1),
        lambda p: p["spec"].update(tolerations=[{"key": "a", "operator": "Exists"}]),
        lambda p: p["spec"].update(nodeName="node-1"),
        lambda p: p.update(status={"phase": "Running"}),
    ],
)
def test_allowed_pod_updates(mutate: Callable[[Obj], None]) -> None:
    assert update(mutate) == []


def test_forbidden_pod_update_names_the_change() -> None:
    [cause] = update(lambda p: p["spec"]["containers"][0].update(env=[{"name": "A", "value": "1"}]))
    assert (cause.field, cause.reason) == ("spec", f.FORBIDDEN)
    assert cause.message.startswith(FORBIDDEN_PREFIX)
    assert "spec.containers[0].env" in cause.message


def test_other_pod_update_rules() -> None:
    assert triples(update(lambda p: p["spec"]["containers"].append(container(name="b")))) == [
        ("spec.containers", f.FORBIDDEN, "Forbidden: pod updates may not add or remove containers")
    ]
    assert triples(update(lambda p: p["spec"]["containers"][0].update(image=""))) == [
        ("spec.containers[0].image", f.REQUIRED, "Required value")
    ]
    assert fields_of(update(lambda p: p["spec"].update(restartPolicy="Never"))) == ["spec"]
    assert fields_of(update(lambda p: p["spec"].update(nodeName="b"), nodeName="a")) == ["spec"]
    assert triples(update(lambda p: p["spec"].update(activeDeadlineSeconds=60), activeDeadlineSeconds=30)) == [
        (
            "spec.activeDeadlineSeconds",
            f.INVALID,
            "Invalid value: 60: must be less than or equal to previous value",
        )
    ]
    assert triples(update(lambda p: p["spec"].pop("activeDeadlineSeconds"), activeDeadlineSeconds=30)) == [
        (
            "spec.activeDeadlineSeconds",
            f.INVALID,
            "Invalid value: null: must not update from a positive integer " "to nil value",
        )
    ]
    toleration = {
        "key": "a",
        "operator": "Equal",
        "value": "x",
        "effect": "NoExecute",
        "tolerationSeconds": 5,
    }
    changed = update(lambda p: p["spec"]["tolerations"][0].update(value="y"), tolerations=[toleration])
    assert triples(changed)[0] == (
        "spec.tolerations",
        f.FORBIDDEN,
        "Forbidden: existing toleration can not be modified except its tolerationSeconds",
    )
    assert update(lambda p: p["spec"]["tolerations"][0].update(tolerationSeconds=1), tolerations=[toleration]) == []


def test_update_does_not_revalidate_unchanged_spec() -> None:
    old = defaulted(make_pod(containers=[container(name="Bad_Name")]))
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"x": "y"}
    assert core.validate_pod(new, old) == []


# --- Namespace ---


def test_namespace_defaults() -> None:
    ns: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    core.default_namespace(ns)
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    once = copy.deepcopy(ns)
    core.default_namespace(ns)
    assert ns == once
    finalized: Obj = {
        "metadata": {"name": "x", "labels": {"kubernetes.io/metadata.name": "y"}},
        "spec": {"finalizers": []},
    }
    core.default_namespace(finalized)
    assert finalized["spec"]["finalizers"] == []
    assert finalized["metadata"]["labels"]["kubernetes.io/metadata.name"] == "x"
    assert core.initial_namespace_status(ns) == {"phase": "Active"}
    null_spec: Obj = {"metadata": {"name": "y"}, "spec": None}
    core.default_namespace(null_spec)
    assert null_spec["spec"] == {"finalizers": ["kubernetes"]}


@pytest.mark.parametrize(
    ("finalizers", "expected"),
    [
        (["kubernetes", "example.com/mine"], []),
        (
            ["custom"],
            [
                (
                    "spec.finalizers",
                    f.INVALID,
                    'Invalid value: "custom": name is neither a standard ' "finalizer name nor is it fully qualified",
                )
            ],
        ),
        (
            ["bad name/x"],
            [
                (
                    "spec.finalizers",
                    f.INVALID,
                    'Invalid value: "bad name/x": prefix part a lowercase RFC '
                    "1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
                    "start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                )
            ],
        ),
    ],
)
def test_namespace_validation(finalizers: list[str], expected: list[tuple[str, str, str]]) -> None:
    assert triples(core.validate_namespace({"spec": {"finalizers": finalizers}}, None)) == expected


# --- Node ---


def test_node_defaults() -> None:
    node: Obj = {"spec": {"podCIDR": "10.0.1.0/24"}, "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}
    core.default_node(node)
    assert node["spec"]["podCIDRs"] == ["10.0.1.0/24"]
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}
    node["status"]["allocatable"] = {"cpu": "3"}
    core.default_node(node)
    assert node["status"]["allocatable"] == {"cpu": "3"}


def test_node_validation() -> None:
    node: Obj = {
        "spec": {
            "podCIDR": "10.0.0.0/33",
            "taints": [
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "other", "effect": "NoSchedule"},
                {"key": "k"},
                {"key": "bad key", "effect": "Never"},
            ],
        },
        "status": {"capacity": {"cpu": "four", "memory": "-1Gi"}, "allocatable": {"pods": "110"}},
    }
    assert triples(core.validate_node(node, None)) == [
        (
            "spec.podCIDR",
            f.INVALID,
            'Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or ' "2001:db8::/64)",
        ),
        (
            "spec.taints[1]",
            f.DUPLICATE,
            'Duplicate value: {"Key":"dedicated","Value":"other","Effect":"NoSchedule",'
            '"TimeAdded":null}: taints must be unique by key and effect pair',
        ),
        ("spec.taints[2].effect", f.REQUIRED, "Required value"),
        (
            "spec.taints[3].key",
            f.INVALID,
            'Invalid value: "bad key": name part must consist of alphanumeric '
            "characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or "
            "'my.name',  or '123-abc', regex used for validation "
            "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "spec.taints[3].effect",
            f.NOT_SUPPORTED,
            'Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
        ),
        (
            "status.capacity.cpu",
            f.INVALID,
            'Invalid value: "four": quantities must match the regular expression '
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        ("status.capacity.memory", f.INVALID, f'Invalid value: "-1Gi": {NONNEG}'),
    ]


def test_node_updates() -> None:
    old: Obj = {"spec": {"podCIDRs": ["10.0.1.0/24"], "providerID": "aws:///i-1"}}
    assert core.validate_node(copy.deepcopy(old), old) == []
    assert core.validate_node({"spec": {"podCIDRs": ["10.0.1.0/24"], "providerID": "aws:///i-1"}}, {"spec": {}}) == []
    assert triples(core.validate_node({"spec": {"podCIDRs": ["10.0.2.0/24"], "providerID": "x"}}, old)) == [
        (
            "spec.podCIDRs",
            f.FORBIDDEN,
            'Forbidden: node updates may not change podCIDR except from "" to valid',
        ),
        (
            "spec.providerID",
            f.FORBIDDEN,
            'Forbidden: node updates may not change providerID except from "" to valid',
        ),
    ]


# --- Event ---


def event(namespace: str = "default", **kw: Any) -> Obj:
    return {
        "metadata": {"name": "e", "namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
        "reason": "Started",
        "message": "Started container",
        "type": "Normal",
        **kw,
    }


def test_event_defaults_nothing() -> None:
    ev = event()
    core.default_event(ev)
    assert ev == event()


def test_event_validation() -> None:
    assert core.validate_event(event(), None) == []
    assert core.validate_event(event("team"), None) == []
    mismatch = event("team")
    mismatch["involvedObject"]["namespace"] = "other"
    assert triples(core.validate_event(mismatch, None)) == [
        ("involvedObject.namespace", f.INVALID, 'Invalid value: "other": does not match event.namespace')
    ]
    assert fields_of(core.validate_event({"metadata": {"namespace": "team"}}, None)) == ["involvedObject.namespace"]
    new_style = event(eventTime="2024-01-01T00:00:00.000000Z", reason="")
    assert triples(core.validate_event(new_style, None)) == [
        ("reportingComponent", f.REQUIRED, "Required value"),
        ("reportingComponent", f.INVALID, 'Invalid value: "": name part must be non-empty'),
        (
            "reportingComponent",
            f.INVALID,
            'Invalid value: "": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  "
            "or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        ("reportingInstance", f.REQUIRED, "Required value"),
        ("action", f.REQUIRED, "Required value"),
        ("reason", f.REQUIRED, "Required value"),
    ]


# --- ConfigMap ---

KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


@pytest.mark.parametrize(
    ("cm", "expected"),
    [
        ({"data": {"app.properties": "a=b", "KEY_1": "", "-x": "y"}, "binaryData": {"blob": "AAEC"}}, []),
        ({"data": {"bad key": "v"}}, [("data[bad key]", f.INVALID, f'Invalid value: "bad key": {KEY_MSG}')]),
        ({"data": {"..": "v"}}, [("data[..]", f.INVALID, "Invalid value: \"..\": must not be '..'")]),
        (
            {"data": {"k" * 254: "v"}},
            [
                (
                    f"data[{'k' * 254}]",
                    f.INVALID,
                    f'Invalid value: "{"k" * 254}": must be no more than 253 characters',
                )
            ],
        ),
        (
            {"data": {"k": "v"}, "binaryData": {"k": "AA=="}},
            [
                ("data[k]", f.INVALID, 'Invalid value: "k": duplicate of key present in binaryData'),
                ("binaryData[k]", f.INVALID, 'Invalid value: "k": duplicate of key present in data'),
            ],
        ),
        ({"data": {"k": 1}}, [("data[k]", f.TYPE_INVALID, "Invalid value: 1: must be of type string")]),
        (
            {"data": {"k": "v" * (1024 * 1024 + 1)}},
            [("", f.TOO_LONG, "Too long: may not be more than 1048576 bytes")],
        ),
    ],
)
def test_configmap_validation(cm: Obj, expected: list[tuple[str, str, str]]) -> None:
    assert triples(core.validate_configmap(cm, None)) == expected


def test_immutable_configmap() -> None:
    old: Obj = {"data": {"a": "1"}, "immutable": True}
    assert core.validate_configmap(copy.deepcopy(old), old) == []
    assert triples(core.validate_configmap({"data": {"a": "2"}}, old)) == [
        ("immutable", f.FORBIDDEN, "Forbidden: field is immutable when `immutable` is set"),
        ("data", f.FORBIDDEN, "Forbidden: field is immutable when `immutable` is set"),
    ]


# --- Service ---


def service(**spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": spec,
    }


def test_service_defaults() -> None:
    svc = service(selector={"app": "web"}, ports=[{"port": 80}, {"name": "named", "port": 81, "targetPort": "http"}])
    core.default_service(svc)
    assert svc["spec"] == {
        "selector": {"app": "web"},
        "ports": [
            {"port": 80, "protocol": "TCP", "targetPort": 80},
            {"name": "named", "port": 81, "targetPort": "http", "protocol": "TCP"},
        ],
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    once = copy.deepcopy(svc)
    core.default_service(svc)
    assert svc == once


def test_service_defaults_by_type() -> None:
    node_port = service(type="NodePort", ports=[{"port": 80}])
    core.default_service(node_port)
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"
    lb = service(type="LoadBalancer", ports=[{"port": 80}])
    core.default_service(lb)
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    external = service(type="ExternalName", externalName="example.com")
    core.default_service(external)
    assert external["spec"] == {
        "type": "ExternalName",
        "externalName": "example.com",
        "sessionAffinity": "None",
    }
    headless = service(clusterIP="None", ports=[{"port": 80}])
    core.default_service(headless)
    assert (headless["spec"]["clusterIPs"], headless["spec"]["ipFamilyPolicy"]) == (
        ["None"],
        "RequireDualStack",
    )
    sticky = service(sessionAffinity="ClientIP", ports=[{"port": 80}])
    core.default_service(sticky)
    assert sticky["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


SERVICE_CASES: list[tuple[str, Obj, list[tuple[str, str, str]]]] = [
    (
        "valid",
        service(
            ports=[
                {"name": "http", "port": 80, "targetPort": "web"},
                {"name": "dns", "port": 53, "protocol": "UDP"},
            ]
        ),
        [],
    ),
    ("no ports", service(selector={"a": "b"}), [("spec.ports", f.REQUIRED, "Required value")]),
    ("headless without ports", service(clusterIP="None"), []),
    (
        "port range",
        service(ports=[{"port": 0}]),
        [
            ("spec.ports[0].port", f.INVALID, f"Invalid value: 0: {PORT_RANGE}"),
            ("spec.ports[0].targetPort", f.INVALID, f"Invalid value: 0: {PORT_RANGE}"),
        ],
    ),
    (
        "names required",
        service(ports=[{"port": 80}, {"name": "b", "port": 81}]),
        [("spec.ports[0].name", f.REQUIRED, "Required value")],
    ),
    (
        "names unique",
        service(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}]),
        [("spec.ports[1].name", f.DUPLICATE, 'Duplicate value: "a"')],
    ),
    (
        "port pairs unique",
        service(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
        [
            (
                "spec.ports[1]",
                f.DUPLICATE,
                'Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,'
                '"TargetPort":0,"NodePort":0}',
            )
        ],
    ),
    (
        "target port",
        service(ports=[{"port": 80, "targetPort": 70000}]),
        [("spec.ports[0].targetPort", f.INVALID, f"Invalid value: 70000: {PORT_RANGE}")],
    ),
    (
        "type",
        service(type="Magic", ports=[{"port": 80}]),
        [
            (
                "spec.type",
                f.NOT_SUPPORTED,
                'Unsupported value: "Magic": supported values: '
                '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
            )
        ],
    ),
    (
        "node port range",
        service(type="NodePort", ports=[{"port": 80, "nodePort": 8080}]),
        [
            (
                "spec.ports[0].nodePort",
                f.INVALID,
                "Invalid value: 8080: provided port is not in the valid range. The range "
                "of valid ports is 30000-32767",
            )
        ],
    ),
    ("node port ok", service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}]), []),
    (
        "node port on cluster ip",
        service(ports=[{"port": 80, "nodePort": 30080}]),
        [("spec.ports[0].nodePort", f.FORBIDDEN, "Forbidden: may not be used when `type` is 'ClusterIP'")],
    ),
    (
        "selector",
        service(selector={"app": "-x"}, ports=[{"port": 80}]),
        [
            (
                "spec.selector",
                f.INVALID,
                'Invalid value: "-x": a valid label must be an empty string or consist of '
                "alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (e.g. "
                "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            )
        ],
    ),
    (
        "protocol",
        service(ports=[{"port": 80, "protocol": "tcp"}]),
        [
            (
                "spec.ports[0].protocol",
                f.NOT_SUPPORTED,
                'Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"',
            )
        ],
    ),
    ("external name", service(type="ExternalName"), [("spec.externalName", f.REQUIRED, "Required value")]),
    ("external name ok", service(type="ExternalName", externalName="db.example.com."), []),
    (
        "cluster ip",
        service(clusterIP="10.0.0.300", ports=[{"port": 80}]),
        [
            (
                "spec.clusterIP",
                f.INVALID,
                'Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or ' "2001:db8::ffff)",
            ),
            (
                "spec.clusterIPs[0]",
                f.INVALID,
                'Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or ' "2001:db8::ffff)",
            ),
        ],
    ),
    (
        "affinity",
        service(sessionAffinity="Sticky", ports=[{"port": 80}]),
        [
            (
                "spec.sessionAffinity",
                f.NOT_SUPPORTED,
                'Unsupported value: "Sticky": supported values: "ClientIP", "None"',
            )
        ],
    ),
    (
        "ports a dict",
        service(ports={"port": 80}),
        [("spec.ports", f.TYPE_INVALID, 'Invalid value: {"port":80}: must be of type array')],
    ),
]


@pytest.mark.parametrize(
    ("svc", "expected"), [(s, e) for _, s, e in SERVICE_CASES], ids=[n for n, _, _ in SERVICE_CASES]
)
def test_service_validation(svc: Obj, expected: list[tuple[str, str, str]]) -> None:
    core.default_service(svc)
    assert triples(core.validate_service(svc, None)) == expected


def test_service_cluster_ip_is_immutable() -> None:
    old = service(clusterIP="10.96.0.10", ports=[{"port": 53}])
    core.default_service(old)
    new = copy.deepcopy(old)
    new["spec"].update(clusterIP="10.96.0.11", clusterIPs=["10.96.0.11"])
    assert triples(core.validate_service(new, old)) == [
        ("spec.clusterIPs[0]", f.INVALID, 'Invalid value: ["10.96.0.11"]: may not change once set')
    ]
