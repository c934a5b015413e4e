"""skiff.io/v1 NodePool and NodeClaim: defaults and validation.

Why this exists: the provisioner acts on these objects with real money (it launches EC2 instances),
so a pool it cannot honour must be refused at the door with a 422 naming each bad field, not
discovered later as a pool that silently never launches. NodePool is the user's statement of what
capacity may be bought (instance types, zones, capacity type, launch template, labels and taints
for its nodes, limits, disruption policy); NodeClaim is the provisioner's record of one node it
decided to buy, written before the launch so that a replayed handler finds it (invariant 4).

Instance types: a NodePool may only name types in the provisioner's price table
(chalicelib/provisioner/prices.json), since a type that cannot be priced cannot be ranked; other
names are rejected. Zones are accepted as given (their existence depends on the account and region).
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.errors import Cause
from chalicelib.provisioner import prices
from chalicelib.types import fields as f
from chalicelib.types import meta
from chalicelib.types.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]

GROUP = "skiff.io"
CAPACITY_TYPES = prices.CAPACITY_TYPES
PHASES = ("Pending", "Launched", "Registered", "Failed")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

# Labels the provisioner puts on every node it launches (Karpenter's, under our group where theirs
# is karpenter.sh). A NodePool may not set them itself: they describe what was actually launched.
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_ZONE = "topology.kubernetes.io/zone"
LABEL_REGION = "topology.kubernetes.io/region"
LABEL_CAPACITY_TYPE = "skiff.io/capacity-type"
LABEL_NODEPOOL = "skiff.io/nodepool"
LABEL_ARCH = "kubernetes.io/arch"
LABEL_OS = "kubernetes.io/os"
LABEL_HOSTNAME = "kubernetes.io/hostname"
WELL_KNOWN_LABELS = (LABEL_INSTANCE_TYPE, LABEL_ZONE, LABEL_REGION, LABEL_CAPACITY_TYPE, LABEL_NODEPOOL,
                     LABEL_ARCH, LABEL_OS, LABEL_HOSTNAME)

DEFAULT_EMPTY_AFTER_SECONDS = 300
DEFAULT_REGISTRATION_TIMEOUT_SECONDS = 600
DEFAULT_MAX_PODS_PER_NODE = 110  # kubelet's default --max-pods
_LAUNCH_TEMPLATE_ID = re.compile(r"lt-[0-9a-f]{8,17}")
_LAUNCH_TEMPLATE_NAME = re.compile(r"[a-zA-Z0-9()./_-]{3,128}")


# --- NodePool ---


def default_nodepool(obj: Obj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("capacityType", "on-demand")
    spec.setdefault("registrationTimeoutSeconds", DEFAULT_REGISTRATION_TIMEOUT_SECONDS)
    spec.setdefault("maxPodsPerNode", DEFAULT_MAX_PODS_PER_NODE)
    disruption = spec.setdefault("disruption", {})
    if isinstance(disruption, dict):
        disruption.setdefault("emptyAfterSeconds", DEFAULT_EMPTY_AFTER_SECONDS)


def validate_nodepool(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    spec = f.as_map(obj.get("spec"), "spec", errs)
    if "spec" not in obj:
        errs.append(f.required("spec"))
    # A type the pool already named stays valid if a newer price table drops it, so that status
    # writes (validated too) and unrelated edits keep working.
    before = set(f.list_or_empty(f.dict_or_empty((old or {}).get("spec")).get("instanceTypes")))
    _instance_types(spec.get("instanceTypes"), "spec.instanceTypes", errs, before)
    _unique_strings(spec.get("zones"), "spec.zones", errs)
    _capacity_type(spec.get("capacityType"), "spec.capacityType", errs)
    _launch_template(spec.get("launchTemplate"), "spec.launchTemplate", errs)
    errs.extend(meta.validate_labels(spec.get("labels"), "spec.labels"))
    for key in f.dict_or_empty(spec.get("labels")):
        if key in WELL_KNOWN_LABELS:
            errs.append(f.forbidden(f.key("spec.labels", key), "the provisioner sets this label on its nodes"))
    validate_taints(spec.get("taints"), "spec.taints", errs)
    limits = f.as_map(spec.get("limits"), "spec.limits", errs)
    f.nonnegative(limits.get("maxNodes"), "spec.limits.maxNodes", errs)
    _nonnegative_quantity(limits.get("cpu"), "spec.limits.cpu", errs)
    disruption = f.as_map(spec.get("disruption"), "spec.disruption", errs)
    f.nonnegative(disruption.get("emptyAfterSeconds"), "spec.disruption.emptyAfterSeconds", errs)
    _positive(spec.get("registrationTimeoutSeconds"), "spec.registrationTimeoutSeconds", errs)
    _positive(spec.get("maxPodsPerNode"), "spec.maxPodsPerNode", errs)
    status = f.as_map(obj.get("status"), "status", errs)
    for _, path, offering in f.maps_in(status.get("unavailableOfferings"), "status.unavailableOfferings", errs):
        _capacity_type(offering.get("capacityType"), f.child(path, "capacityType"), errs)
    return errs


def _instance_types(value: Any, path: str, errs: list[Cause], before: set[Any]) -> None:
    names = _unique_strings(value, path, errs)
    if value is None or (isinstance(value, list) and not value):
        errs.append(f.required(path, "at least one instance type"))
    known = prices.known_types() | before
    for i, name in names:
        if name not in known:
            errs.append(f.invalid(f.index(path, i), name,
                                  "not an instance type in Skiff's price table (chalicelib/provisioner/prices.json)"))


def _unique_strings(value: Any, path: str, errs: list[Cause]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(f.as_list(value, path, errs)):
        item_path = f.index(path, i)
        if not isinstance(item, str):
            errs.append(f.type_invalid(item_path, item, "string"))
        elif not item:
            errs.append(f.required(item_path))
        elif item in seen:
            errs.append(f.duplicate(item_path, item))
        else:
            seen.add(item)
            out.append((i, item))
    return out


def _capacity_type(value: Any, path: str, errs: list[Cause]) -> None:
    text = f.as_str(value, path, errs)
    if text and text not in CAPACITY_TYPES:
        errs.append(f.not_supported(path, text, list(CAPACITY_TYPES)))


def _launch_template(value: Any, path: str, errs: list[Cause]) -> None:
    if value is None:
        errs.append(f.required(path, "the EC2 launch template nodes start from (name or id)"))
        return
    template = f.as_map(value, path, errs)
    name = f.as_str(template.get("name"), f.child(path, "name"), errs)
    ident = f.as_str(template.get("id"), f.child(path, "id"), errs)
    f.as_str(template.get("version"), f.child(path, "version"), errs)
    if name and ident:
        errs.append(f.forbidden(path, "name and id are mutually exclusive"))
    elif not name and not ident and isinstance(value, dict):
        errs.append(f.required(path, "one of name or id"))
    if name and not _LAUNCH_TEMPLATE_NAME.fullmatch(name):
        errs.append(f.invalid(f.child(path, "name"), name,
                              "must be 3-128 characters of letters, digits and ( ) . / _ -"))
    if ident and not _LAUNCH_TEMPLATE_ID.fullmatch(ident):
        errs.append(f.invalid(f.child(path, "id"), ident, "must look like lt-0123456789abcdef0"))


def _nonnegative_quantity(value: Any, path: str, errs: list[Cause]) -> None:
    if value is None:
        return
    try:
        if parse_quantity(value) < 0:
            errs.append(f.invalid(path, value, f.IS_NEGATIVE))
    except QuantityError as e:
        errs.append(f.invalid(path, value, e.detail))


def _positive(value: Any, path: str, errs: list[Cause]) -> None:
    n = f.as_int(value, path, errs)
    if n is not None and n <= 0:
        errs.append(f.invalid(path, n, "must be greater than 0"))


def validate_taints(value: Any, path: str, errs: list[Cause]) -> None:
    """Taints as a Node carries them: qualified key, label value, known effect, unique (key, effect)."""
    seen: set[tuple[str, str]] = set()
    for _, tpath, taint in f.maps_in(value, path, errs):
        key = f.as_str(taint.get("key"), f.child(tpath, "key"), errs) or ""
        errs.extend(f.invalid(f.child(tpath, "key"), key, m) for m in f.is_qualified_name(key))
        taint_value = f.as_str(taint.get("value"), f.child(tpath, "value"), errs) or ""
        problems = f.is_label_value(taint_value)
        if problems:
            errs.append(f.invalid(f.child(tpath, "value"), taint_value, ";".join(problems)))
        effect = f.as_str(taint.get("effect"), f.child(tpath, "effect"), errs)
        if effect == "":
            errs.append(f.required(f.child(tpath, "effect")))
        elif effect and effect not in TAINT_EFFECTS:
            errs.append(f.not_supported(f.child(tpath, "effect"), effect, list(TAINT_EFFECTS)))
        if (key, effect or "") in seen:
            errs.append(f.duplicate(tpath, {"key": key, "effect": effect or ""}))
        seen.add((key, effect or ""))


# --- NodeClaim ---


def initial_nodeclaim_status(obj: Obj) -> Obj:
    return {"phase": "Pending"}


_IMMUTABLE_CLAIM_FIELDS = ("nodePool", "instanceType", "zone", "capacityType", "labels", "taints")


def validate_nodeclaim(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    spec = f.as_map(obj.get("spec"), "spec", errs)
    for name in ("nodePool", "instanceType", "zone"):
        text = f.as_str(spec.get(name), f.child("spec", name), errs)
        if text == "":
            errs.append(f.required(f.child("spec", name)))
    capacity = f.as_str(spec.get("capacityType"), "spec.capacityType", errs)
    if capacity == "":
        errs.append(f.required("spec.capacityType"))
    _capacity_type(capacity, "spec.capacityType", errs)
    errs.extend(meta.validate_labels(spec.get("labels"), "spec.labels"))
    validate_taints(spec.get("taints"), "spec.taints", errs)
    _unique_strings(spec.get("podUIDs"), "spec.podUIDs", errs)
    status = f.as_map(obj.get("status"), "status", errs)
    phase = f.as_str(status.get("phase"), "status.phase", errs)
    if phase and phase not in PHASES:
        errs.append(f.not_supported("status.phase", phase, list(PHASES)))
    if old is not None:
        old_spec = f.dict_or_empty(old.get("spec"))
        for name in _IMMUTABLE_CLAIM_FIELDS:
            if spec.get(name) != old_spec.get(name):
                errs.append(f.invalid(f.child("spec", name), spec.get(name), f.IMMUTABLE))
        dropped = set(f.list_or_empty(old_spec.get("podUIDs"))) - set(f.list_or_empty(spec.get("podUIDs")))
        if dropped:
            errs.append(f.forbidden("spec.podUIDs", "pods may be added, not removed"))
    return errs
