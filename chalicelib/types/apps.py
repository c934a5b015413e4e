"""apps/v1 defaults and validation: Deployment and ReplicaSet.

The deployment and replica set controllers rely on what this guarantees: a defaulted strategy and
replica count, a non-empty selector that matches the template's labels, and a template that would be
a valid pod. Defaults follow pkg/apis/apps/v1/defaults.go, validation pkg/apis/apps/validation; the
template's pod spec is defaulted and validated by pod.py, the same code as for Pods.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.errors import Cause
from chalicelib.types import fields as f
from chalicelib.types.meta import (
    selector_for_display,
    selector_matches,
    validate_annotations,
    validate_label_selector,
    validate_labels,
)
from chalicelib.types.pod import validate_pod_spec
from chalicelib.types.pod_defaults import default_pod_spec

Obj = dict[str, Any]

STRATEGY_TYPES = ("Recreate", "RollingUpdate")


# --- Defaults ---


def _default_template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"], pod=False)


def default_deployment(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.get("strategy")
    if strategy is None:
        strategy = spec["strategy"] = {}
    if isinstance(strategy, dict):
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            if rolling is None:
                rolling = strategy["rollingUpdate"] = {}
            if isinstance(rolling, dict):
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
                for name in ("maxUnavailable", "maxSurge"):
                    if rolling[name] is None:
                        rolling[name] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec)


def default_replicaset(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec)


# --- Validation ---


def _selector_and_template(spec: Obj, errs: list[Cause]) -> None:
    """The selector, and the template it must match (ValidatePodTemplateSpecForReplicaSet)."""
    selector = spec.get("selector")
    if selector is None:
        errs.append(f.required("spec.selector"))
    else:
        before = len(errs)
        errs.extend(validate_label_selector(selector, "spec.selector"))
        if (
            isinstance(selector, dict)
            and not selector.get("matchLabels")
            and not selector.get("matchExpressions")
        ):
            errs.append(
                f.invalid(
                    "spec.selector",
                    selector_for_display(selector),
                    "empty selector is invalid for deployment",
                )
            )
        if len(errs) > before and any(e.field.startswith("spec.selector.") for e in errs[before:]):
            errs.append(f.invalid("spec.selector", selector_for_display(selector), "invalid label selector"))
            selector = False  # unusable: skip the template match, as upstream does
    tpath = "spec.template"
    template = f.as_map(spec.get("template"), tpath, errs)
    metadata = f.as_map(template.get("metadata"), f.child(tpath, "metadata"), errs)
    labels = metadata.get("labels")
    has_rules = isinstance(selector, dict) and (
        selector.get("matchLabels") or selector.get("matchExpressions")
    )
    if (selector is None or has_rules) and not selector_matches(selector, labels):
        errs.append(
            f.invalid(
                f.child(tpath, "metadata.labels"), labels, "`selector` does not match template `labels`"
            )
        )
    # Template labels and annotations are reported at spec.template.labels, as upstream does.
    errs.extend(validate_labels(labels, f.child(tpath, "labels")))
    errs.extend(validate_annotations(metadata.get("annotations"), f.child(tpath, "annotations")))
    pod_spec = f.as_map(template.get("spec"), f.child(tpath, "spec"), errs)
    validate_pod_spec(pod_spec, f.child(tpath, "spec"), errs, pod=False)
    restart = pod_spec.get("restartPolicy")
    if isinstance(restart, str) and restart and restart != "Always":
        errs.append(f.not_supported(f.child(tpath, "spec.restartPolicy"), restart, ["Always"]))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            f.forbidden(
                f.child(tpath, "spec.activeDeadlineSeconds"),
                "activeDeadlineSeconds in ReplicaSet is not Supported",
            )
        )


def _common(obj: Obj, old: Obj | None, errs: list[Cause]) -> Obj:
    spec = f.as_map(obj.get("spec"), "spec", errs)
    f.nonnegative(spec.get("replicas"), "spec.replicas", errs)
    f.nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds", errs)
    _selector_and_template(spec, errs)
    if old is not None:
        old_spec = f.dict_or_empty(old.get("spec"))
        new_sel, old_sel = (
            selector_for_display(spec.get("selector")),
            selector_for_display(old_spec.get("selector")),
        )
        if new_sel != old_sel:
            errs.append(f.invalid("spec.selector", new_sel, f.IMMUTABLE))
    return spec


_PERCENT = re.compile(r"^([0-9]+)%$")


def _int_or_percent_value(value: Any) -> tuple[int, bool]:
    """getIntOrPercentValue: (value, is_percent); an unparseable string counts as 0."""
    if isinstance(value, str):
        m = _PERCENT.match(value)
        if m:
            return int(m.group(1)), True
        return (int(value), False) if value.isdigit() else (0, False)
    return (value, False) if isinstance(value, int) and not isinstance(value, bool) else (0, False)


def _positive_int_or_percent(value: Any, path: str, errs: list[Cause]) -> None:
    if isinstance(value, str):
        errs.extend(f.invalid(path, value, m) for m in f.is_valid_percent(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            errs.append(f.invalid(path, value, f.IS_NEGATIVE))
    else:
        errs.append(f.invalid(path, value, "must be an integer or percentage (e.g '5%')"))


def _strategy(spec: Obj, errs: list[Cause]) -> None:
    path = "spec.strategy"
    strategy = f.as_map(spec.get("strategy"), path, errs)
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            errs.append(
                f.forbidden(
                    f.child(path, "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"
                )
            )
    elif kind == "RollingUpdate":
        rpath = f.child(path, "rollingUpdate")
        if rolling is None:
            errs.append(f.required(rpath, "this should be defaulted and never be nil"))
            return
        ru = f.as_map(rolling, rpath, errs)
        unavailable, surge = ru.get("maxUnavailable"), ru.get("maxSurge")
        _positive_int_or_percent(unavailable, f.child(rpath, "maxUnavailable"), errs)
        _positive_int_or_percent(surge, f.child(rpath, "maxSurge"), errs)
        if _int_or_percent_value(unavailable)[0] == 0 and _int_or_percent_value(surge)[0] == 0:
            errs.append(
                f.invalid(f.child(rpath, "maxUnavailable"), unavailable, "may not be 0 when `maxSurge` is 0")
            )
        value, is_percent = _int_or_percent_value(unavailable)
        if is_percent and value > 100:
            errs.append(
                f.invalid(f.child(rpath, "maxUnavailable"), unavailable, "must not be greater than 100%")
            )
    else:
        shown_rolling: Any = rolling
        if isinstance(rolling, dict):
            shown_rolling = f.GoStruct(
                MaxUnavailable=rolling.get("maxUnavailable"), MaxSurge=rolling.get("maxSurge")
            )
        shown = f.GoStruct(Type=kind if kind is not None else "", RollingUpdate=shown_rolling)
        errs.append(f.not_supported(path, shown, list(STRATEGY_TYPES)))


def _status(obj: Obj, counters: tuple[str, ...], errs: list[Cause]) -> None:
    """Replica counters are non-negative and consistent (ValidateDeploymentStatus / ReplicaSetStatus)."""
    status = f.as_map(obj.get("status"), "status", errs)
    values = {}
    for name in ("observedGeneration", "collisionCount", *counters):
        values[name] = f.nonnegative(status.get(name), f.child("status", name), errs) or 0
    for name in counters[1:]:
        if name != "unavailableReplicas" and values[name] > values["replicas"]:
            errs.append(
                f.invalid(f.child("status", name), values[name], "cannot be greater than status.replicas")
            )
    if values["availableReplicas"] > values["readyReplicas"]:
        errs.append(
            f.invalid(
                "status.availableReplicas",
                values["availableReplicas"],
                "cannot be greater than readyReplicas",
            )
        )


def validate_deployment(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    spec = _common(obj, old, errs)
    _strategy(spec, errs)
    f.nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit", errs)
    f.as_bool(spec.get("paused"), "spec.paused", errs)
    deadline = f.nonnegative(spec.get("progressDeadlineSeconds"), "spec.progressDeadlineSeconds", errs)
    min_ready = f.int_or(spec.get("minReadySeconds"), 0)
    if deadline is not None and deadline <= min_ready:
        errs.append(
            f.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
        )
    _status(
        obj,
        ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"),
        errs,
    )
    return errs


def validate_replicaset(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    _common(obj, old, errs)
    _status(obj, ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"), errs)
    return errs
