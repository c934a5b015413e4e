"""apps/v1 defaults and validation: Deployment and ReplicaSet."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.errors import Cause
from chalicelib.types import apps
from chalicelib.types import fields as f

Obj = dict[str, Any]
NONNEG = "must be greater than or equal to 0"
PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex "
    "used for validation is '[0-9]+%')"
)
MISMATCH = "`selector` does not match template `labels`"


def triples(causes: list[Cause]) -> list[tuple[str, str, str]]:
    return [(c.field, c.reason, c.message) for c in causes]


def deployment(**spec: Any) -> Obj:
    base: Obj = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        },
    }
    base.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n"},
        "spec": base,
    }


def replicaset(**spec: Any) -> Obj:
    obj = deployment(**spec)
    obj["kind"] = "ReplicaSet"
    return obj


def validate_deployment(obj: Obj, old: Obj | None = None) -> list[Cause]:
    apps.default_deployment(obj)
    return apps.validate_deployment(obj, old)


# --- Defaults ---


def test_deployment_defaults() -> None:
    obj = deployment()
    apps.default_deployment(obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert "minReadySeconds" not in spec and "paused" not in spec
    assert spec["template"]["spec"] == {
        "containers": [
            {
                "name": "c",
                "image": "nginx",
                "imagePullPolicy": "Always",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "resources": {},
            }
        ],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler",
    }
    once = copy.deepcopy(obj)
    apps.default_deployment(obj)
    assert obj == once


def test_template_gets_no_pod_only_defaults() -> None:
    resources = {"limits": {"cpu": "1"}}
    obj = deployment(template={"spec": {"containers": [{"name": "c", "image": "i", "resources": resources}]}})
    apps.default_deployment(obj)
    pod_spec = obj["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["resources"] == {"limits": {"cpu": "1"}}
    assert "priority" not in pod_spec and "enableServiceLinks" not in pod_spec


def test_strategy_defaults() -> None:
    recreate = deployment(strategy={"type": "Recreate"})
    apps.default_deployment(recreate)
    assert recreate["spec"]["strategy"] == {"type": "Recreate"}
    partial = deployment(strategy={"rollingUpdate": {"maxSurge": 0}}, replicas=0, revisionHistoryLimit=0)
    apps.default_deployment(partial)
    assert partial["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"},
    }
    assert (partial["spec"]["replicas"], partial["spec"]["revisionHistoryLimit"]) == (0, 0)


def test_replicaset_defaults() -> None:
    obj = replicaset()
    apps.default_replicaset(obj)
    assert obj["spec"]["replicas"] == 1
    assert "strategy" not in obj["spec"]
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"


@pytest.mark.parametrize(
    "spec", [None, "x", {"template": "x", "strategy": "y"}, {"strategy": {"rollingUpdate": 3}}]
)
def test_defaults_and_validation_never_crash(spec: Any) -> None:
    for default, validate in (
        (apps.default_deployment, apps.validate_deployment),
        (apps.default_replicaset, apps.validate_replicaset),
    ):
        obj = {"spec": copy.deepcopy(spec)}
        default(obj)
        validate(obj, None)
        validate(obj, {"spec": spec})


# --- Validation ---


CASES: list[tuple[str, Callable[[Obj], None], list[tuple[str, str, str]]]] = [
    ("valid", lambda s: None, []),
    (
        "replicas",
        lambda s: s.update(replicas=-1),
        [("spec.replicas", f.INVALID, f"Invalid value: -1: {NONNEG}")],
    ),
    (
        "replicas a string",
        lambda s: s.update(replicas="3"),
        [("spec.replicas", f.TYPE_INVALID, 'Invalid value: "3": must be of type integer')],
    ),
    (
        "selector missing",
        lambda s: s.pop("selector"),
        [
            ("spec.selector", f.REQUIRED, "Required value"),
            ("spec.template.metadata.labels", f.INVALID, f'Invalid value: {{"app":"web"}}: {MISMATCH}'),
        ],
    ),
    (
        "selector empty",
        lambda s: s.update(selector={}),
        [("spec.selector", f.INVALID, "Invalid value: {}: empty selector is invalid for deployment")],
    ),
    (
        "selector mismatch",
        lambda s: s.update(selector={"matchLabels": {"app": "api"}}),
        [("spec.template.metadata.labels", f.INVALID, f'Invalid value: {{"app":"web"}}: {MISMATCH}')],
    ),
    (
        "template without labels",
        lambda s: s["template"].pop("metadata"),
        [("spec.template.metadata.labels", f.INVALID, f"Invalid value: null: {MISMATCH}")],
    ),
    (
        "selector expressions",
        lambda s: s.update(
            selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}
        ),
        [],
    ),
    (
        "selector invalid",
        lambda s: s.update(selector={"matchExpressions": [{"key": "app", "operator": "Near"}]}),
        [
            (
                "spec.selector.matchExpressions[0].operator",
                f.INVALID,
                'Invalid value: "Near": not a valid selector operator',
            ),
            (
                "spec.selector",
                f.INVALID,
                'Invalid value: {"matchExpressions":[{"key":"app","operator":"Near"}]}: '
                "invalid label selector",
            ),
        ],
    ),
    (
        "template labels",
        lambda s: s["template"]["metadata"]["labels"].update({"bad key": "x"}),
        [
            (
                "spec.template.labels",
                f.INVALID,
                'Invalid value: "bad key": name part must consist of alphanumeric '
                "characters, '-', '_' or '.', and must start and end "
                "with an alphanumeric character (e.g. 'MyName',  or "
                "'my.name',  or '123-abc', regex used for validation "
                "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            )
        ],
    ),
    (
        "template restart policy",
        lambda s: s["template"]["spec"].update(restartPolicy="OnFailure"),
        [
            (
                "spec.template.spec.restartPolicy",
                f.NOT_SUPPORTED,
                'Unsupported value: "OnFailure": supported values: "Always"',
            )
        ],
    ),
    (
        "template deadline",
        lambda s: s["template"]["spec"].update(activeDeadlineSeconds=10),
        [
            (
                "spec.template.spec.activeDeadlineSeconds",
                f.FORBIDDEN,
                "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
            )
        ],
    ),
    (
        "template pod spec",
        lambda s: s["template"]["spec"]["containers"][0].pop("image"),
        [("spec.template.spec.containers[0].image", f.REQUIRED, "Required value")],
    ),
    (
        "template ports",
        lambda s: s["template"]["spec"]["containers"][0].update(ports=[{"containerPort": 0}]),
        [("spec.template.spec.containers[0].ports[0].containerPort", f.REQUIRED, "Required value")],
    ),
    (
        "template ephemeral",
        lambda s: s["template"]["spec"].update(ephemeralContainers=[{"name": "x"}]),
        [
            (
                "spec.template.spec.ephemeralContainers",
                f.FORBIDDEN,
                "Forbidden: ephemeral containers not allowed in pod template",
            )
        ],
    ),
    (
        "min ready",
        lambda s: s.update(minReadySeconds=-5),
        [("spec.minReadySeconds", f.INVALID, f"Invalid value: -5: {NONNEG}")],
    ),
]

DEPLOYMENT_CASES = CASES + [
    (
        "history",
        lambda s: s.update(revisionHistoryLimit=-1),
        [("spec.revisionHistoryLimit", f.INVALID, f"Invalid value: -1: {NONNEG}")],
    ),
    (
        "progress deadline",
        lambda s: s.update(progressDeadlineSeconds=10, minReadySeconds=10),
        [
            (
                "spec.progressDeadlineSeconds",
                f.INVALID,
                "Invalid value: 10: must be greater than minReadySeconds",
            )
        ],
    ),
    (
        "progress deadline negative",
        lambda s: s.update(progressDeadlineSeconds=-1),
        [
            ("spec.progressDeadlineSeconds", f.INVALID, f"Invalid value: -1: {NONNEG}"),
            (
                "spec.progressDeadlineSeconds",
                f.INVALID,
                "Invalid value: -1: must be greater than minReadySeconds",
            ),
        ],
    ),
    (
        "recreate with rolling",
        lambda s: s.update(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
        [
            (
                "spec.strategy.rollingUpdate",
                f.FORBIDDEN,
                "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            )
        ],
    ),
    (
        "strategy type",
        lambda s: s.update(strategy={"type": "BlueGreen"}),
        [
            (
                "spec.strategy",
                f.NOT_SUPPORTED,
                'Unsupported value: {"Type":"BlueGreen","RollingUpdate":null}: supported '
                'values: "Recreate", "RollingUpdate"',
            )
        ],
    ),
    (
        "both zero",
        lambda s: s.update(strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
        [
            (
                "spec.strategy.rollingUpdate.maxUnavailable",
                f.INVALID,
                'Invalid value: "0%": may not be 0 when `maxSurge` is 0',
            )
        ],
    ),
    (
        "ints and percents",
        lambda s: s.update(strategy={"rollingUpdate": {"maxSurge": 2, "maxUnavailable": "50%"}}),
        [],
    ),
    (
        "bad percent",
        lambda s: s.update(strategy={"rollingUpdate": {"maxSurge": "1", "maxUnavailable": "x%"}}),
        [
            ("spec.strategy.rollingUpdate.maxUnavailable", f.INVALID, f'Invalid value: "x%": {PERCENT_MSG}'),
            ("spec.strategy.rollingUpdate.maxSurge", f.INVALID, f'Invalid value: "1": {PERCENT_MSG}'),
        ],
    ),
    (
        "negative surge",
        lambda s: s.update(strategy={"rollingUpdate": {"maxSurge": -1}}),
        [("spec.strategy.rollingUpdate.maxSurge", f.INVALID, f"Invalid value: -1: {NONNEG}")],
    ),
    (
        "over 100%",
        lambda s: s.update(strategy={"rollingUpdate": {"maxUnavailable": "101%"}}),
        [
            (
                "spec.strategy.rollingUpdate.maxUnavailable",
                f.INVALID,
                'Invalid value: "101%": must not be greater than 100%',
            )
        ],
    ),
    (
        "surge a list",
        lambda s: s.update(strategy={"rollingUpdate": {"maxSurge": [1]}}),
        [
            (
                "spec.strategy.rollingUpdate.maxSurge",
                f.INVALID,
                "Invalid value: [1]: must be an integer or percentage " "(e.g '5%')",
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in DEPLOYMENT_CASES], ids=[n for n, _, _ in DEPLOYMENT_CASES]
)
def test_deployment_validation(mutate: Callable[[Obj], None], expected: list[tuple[str, str, str]]) -> None:
    obj = deployment()
    mutate(obj["spec"])
    assert triples(validate_deployment(obj)) == expected


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in CASES], ids=[n for n, _, _ in CASES])
def test_replicaset_validation(mutate: Callable[[Obj], None], expected: list[tuple[str, str, str]]) -> None:
    obj = replicaset()
    mutate(obj["spec"])
    apps.default_replicaset(obj)
    assert triples(apps.validate_replicaset(obj, None)) == expected


def test_selector_is_immutable() -> None:
    old = deployment()
    apps.default_deployment(old)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert apps.validate_deployment(new, old) == []
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert triples(apps.validate_deployment(new, old)) == [
        (
            "spec.selector",
            f.INVALID,
            'Invalid value: {"matchLabels":{"app":"web","tier":"x"}}: field is immutable',
        )
    ]
    rs_old = replicaset()
    rs_new = copy.deepcopy(rs_old)
    rs_new["spec"]["selector"] = {"matchLabels": {"app": "web"}, "matchExpressions": []}
    assert apps.validate_replicaset(rs_new, rs_old) == []
    rs_new["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "Exists"}]}
    assert [c.field for c in apps.validate_replicaset(rs_new, rs_old)] == ["spec.selector"]


def test_status_counters() -> None:
    obj = deployment()
    obj["status"] = {
        "replicas": 2,
        "updatedReplicas": 3,
        "readyReplicas": 1,
        "availableReplicas": 2,
        "unavailableReplicas": -1,
    }
    assert triples(validate_deployment(obj)) == [
        ("status.unavailableReplicas", f.INVALID, f"Invalid value: -1: {NONNEG}"),
        ("status.updatedReplicas", f.INVALID, "Invalid value: 3: cannot be greater than status.replicas"),
        ("status.availableReplicas", f.INVALID, "Invalid value: 2: cannot be greater than readyReplicas"),
    ]
    rs = replicaset()
    rs["status"] = {"replicas": 1, "fullyLabeledReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}
    assert triples(apps.validate_replicaset(rs, None)) == [
        ("status.fullyLabeledReplicas", f.INVALID, "Invalid value: 2: cannot be greater than status.replicas")
    ]
