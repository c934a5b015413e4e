"""Pure rollout arithmetic for the Deployment controller (upstream's pkg/controller/deployment/util).

The controller in deployment.py reads objects and writes through the API; everything here is a
function of the objects it read: the pod-template hash, template equality, revisions and the
annotations that carry them, maxSurge/maxUnavailable fenceposts, how many replicas the new
ReplicaSet may have, and proportional-scaling shares (the status is deployment_status.py's). Keeping
it free of I/O keeps it small to reason about and lets tests check the numbers without a store.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
ANNOTATIONS_NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                    ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand alphanums
_PERCENT = re.compile(r"^([0-9]+)%$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# --- small accessors ---


def md(obj: Obj) -> Obj:
    return obj.setdefault("metadata", {})


def notes_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def spec_replicas(obj: Obj | None) -> int:
    return int(((obj or {}).get("spec") or {}).get("replicas") or 0)


def status_int(obj: Obj | None, name: str) -> int:
    return int(((obj or {}).get("status") or {}).get(name) or 0)


def uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: Any) -> datetime | None:
    try:
        return datetime.strptime(str(text), _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


# --- ordering (controller.ReplicaSetsByCreationTimestamp and friends) ---


def by_creation(rs: Obj) -> tuple[str, str]:
    return str((rs.get("metadata") or {}).get("creationTimestamp") or ""), name(rs)


def sort_by_creation(rss: list[Obj], *, reverse: bool = False) -> list[Obj]:
    return sorted(rss, key=by_creation, reverse=reverse)


def sort_by_size_newer(rss: list[Obj]) -> list[Obj]:
    """Largest first; on a tie the newer first (scaling up)."""
    return sorted(sort_by_creation(rss, reverse=True), key=lambda rs: -spec_replicas(rs))


def sort_by_size_older(rss: list[Obj]) -> list[Obj]:
    """Largest first; on a tie the older first (scaling down)."""
    return sorted(sort_by_creation(rss), key=lambda rs: -spec_replicas(rs))


def revision(rs: Obj) -> int | None:
    """The revision annotation as a number: 0 when absent, None when unparseable."""
    value = notes_of(rs).get(REVISION)
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return None


def max_revision(rss: Iterable[Obj]) -> int:
    return max([r for r in (revision(rs) for rs in rss) if r is not None], default=0)


def sort_by_revision(rss: list[Obj]) -> list[Obj]:
    """Oldest revision first; unparseable revisions and ties fall back to creation order."""
    return sorted(sort_by_creation(rss), key=lambda rs: revision(rs) or 0)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


# --- templates and hashing ---


def _normalised(value: Any) -> Any:
    """Semantic equality as apimachinery's: absent, null, empty maps and empty lists are alike."""
    if isinstance(value, dict):
        out = {k: _normalised(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def _without_hash(template: Any) -> Any:
    t = copy.deepcopy(template) if isinstance(template, dict) else {}
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return _normalised(t)


def equal_ignore_hash(a: Any, b: Any) -> bool:
    """Two pod templates equal but for the pod-template-hash label (deploymentutil.EqualIgnoreHash)."""
    return bool(_without_hash(a) == _without_hash(b))


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """The pod-template-hash: FNV-32a of the template (and collisionCount), safe-encoded.

    Upstream hashes the Go struct's printed form; Skiff hashes the template's canonical JSON, so the
    values differ from upstream's but are stable for a template and differ between templates. As
    upstream, the decimal digits of the hash are mapped onto the safe alphabet.
    """
    canonical = json.dumps(_normalised(template), sort_keys=True, separators=(",", ":"))
    data = canonical.encode()
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in str(_fnv32a(data)))


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (several can exist after a race)."""
    template = (d.get("spec") or {}).get("template")
    for rs in sort_by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


# --- strategy fenceposts ---


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") == "RollingUpdate"


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, "n%" of total rounded up or down."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _PERCENT.match(value)
        if m:
            exact = int(m.group(1)) * total
            return -(-exact // 100) if round_up else exact // 100
        if value.isdigit():
            return int(value)
    return 0


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """(surge, unavailable) for `desired` replicas; both 0 after rounding becomes unavailable 1."""
    surge = scaled_value(max_surge, desired, True)
    unavailable = scaled_value(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling(d: Obj) -> Obj:
    return ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    ru = _rolling(d)
    return resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), spec_replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    replicas = spec_replicas(d)
    if not is_rolling(d) or replicas == 0:
        return 0
    ru = _rolling(d)
    return min(resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas)[1], replicas)


def new_rs_new_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """How big the new ReplicaSet may be now (deploymentutil.NewRSNewReplicas)."""
    replicas = spec_replicas(d)
    if not is_rolling(d):
        return replicas
    surge = scaled_value(_rolling(d).get("maxSurge"), replicas, True)
    # Upstream sums spec.replicas. A ReplicaSet that was just scaled down still has its pods until its
    # controller deletes them, so count what exists when that is more: the surge bound then holds
    # for pods that actually run, not only for the specs.
    current = sum(max(spec_replicas(rs), status_int(rs, "replicas")) for rs in all_rss)
    max_total = replicas + surge
    if current >= max_total:
        return spec_replicas(new_rs)
    return spec_replicas(new_rs) + min(max_total - current, replicas - spec_replicas(new_rs))


# --- annotations ---


def _int_annotation(rs: Obj, key: str) -> int | None:
    try:
        return int(notes_of(rs)[key])
    except (KeyError, ValueError):
        return None


def desired_replicas_annotation(rs: Obj) -> int | None:
    return _int_annotation(rs, DESIRED_REPLICAS)


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    notes = md(rs).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if notes.get(key) != value:
            notes[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    notes = notes_of(rs)
    return notes.get(DESIRED_REPLICAS) != str(desired) or notes.get(MAX_REPLICAS) != str(maximum)


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """Copy the Deployment's annotations to the ReplicaSet, but for kubectl's and the revision ones."""
    notes = md(rs).setdefault("annotations", {})
    changed = False
    for key, value in notes_of(d).items():
        if key in ANNOTATIONS_NOT_COPIED or notes.get(key) == value:
            continue
        notes[key] = value
        changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Annotations of the new ReplicaSet (deploymentutil.SetNewReplicaSetAnnotations); True if changed.

    Its revision rises to `new_revision` when lower; a ReplicaSet that had a revision already is being
    rolled back to, so its old revision goes into the revision history.
    """
    changed = copy_deployment_annotations(d, rs)
    notes = md(rs).setdefault("annotations", {})
    old = notes.get(REVISION)
    try:
        old_int = int(old) if old is not None and old != "" else 0
    except ValueError:
        return False
    if old_int < new_revision:
        notes[REVISION] = str(new_revision)
        changed = True
        if old is not None:
            history = notes.get(REVISION_HISTORY, "")
            if not history:
                notes[REVISION_HISTORY] = old
            else:
                parts = history.split(",")
                total, start = len(history) + len(old) + 1, 0
                while total > MAX_REVISION_HISTORY_CHARS and start < len(parts):
                    total -= len(parts[start]) + 1
                    start += 1
                if total <= MAX_REVISION_HISTORY_CHARS:
                    notes[REVISION_HISTORY] = ",".join([*parts[start:], old])
    if not exists:
        replicas = spec_replicas(d)
        changed = set_replicas_annotations(rs, replicas, replicas + max_surge(d)) or changed
    return changed


# --- scaling ---


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    """The only active ReplicaSet, or the newest when none is active; None when several are."""
    if new_rs is None and not old_rss:
        return None
    olds = sort_by_creation(old_rss, reverse=True)
    running = active([*olds, new_rs])
    if not running:
        return new_rs if new_rs is not None else olds[0]
    return running[0] if len(running) == 1 else None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = desired_replicas_annotation(rs)
    replicas = spec_replicas(d)
    return (desired is not None and spec_replicas(rs) == replicas and desired == replicas
            and status_int(rs, "availableReplicas") == replicas)


def _round_half_away(value: float) -> int:
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def _rs_fraction(rs: Obj, d: Obj) -> int:
    replicas = spec_replicas(d)
    if replicas == 0:
        return -spec_replicas(rs)
    max_now = replicas + max_surge(d)
    before = _int_annotation(rs, MAX_REPLICAS)
    if not before:
        # No annotation (scaled by hand, or made by something else): fall back to the current size.
        before = status_int(d, "replicas")
        if before == 0:
            return 0
    return _round_half_away(spec_replicas(rs) * max_now / before) - spec_replicas(rs)


def rs_proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """This ReplicaSet's share of a proportional scale (deploymentutil.GetReplicaSetProportion)."""
    if spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction, allowed = _rs_fraction(rs, d), to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)
