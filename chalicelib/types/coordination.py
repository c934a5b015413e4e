"""coordination.k8s.io/v1 Lease validation.

Leases carry leader election for Skiff's own controllers and client-go's; a malformed lease (negative
duration, a renewTime that is not a MicroTime) would break every candidate that reads it, so writes
are checked as pkg/apis/coordination/validation does, plus the MicroTime decoding kube-apiserver
performs (RFC 3339 with exactly six fractional digits).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from chalicelib.errors import Cause
from chalicelib.types import fields as f

Obj = dict[str, Any]

MICRO_TIME_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_MICRO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})")
STRATEGIES = ("OldestEmulationVersion",)


def is_micro_time(value: str) -> bool:
    if not _MICRO_TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    spec = f.as_map(obj.get("spec"), "spec", errs)
    f.as_str(spec.get("holderIdentity"), "spec.holderIdentity", errs)
    duration = f.as_int(spec.get("leaseDurationSeconds"), "spec.leaseDurationSeconds", errs)
    if duration is not None and duration <= 0:
        errs.append(f.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = f.as_int(spec.get("leaseTransitions"), "spec.leaseTransitions", errs)
    if transitions is not None and transitions < 0:
        errs.append(f.invalid("spec.leaseTransitions", transitions, f.IS_NEGATIVE))
    for name in ("acquireTime", "renewTime"):
        text = f.as_str(spec.get(name), f.child("spec", name), errs)
        if text and not is_micro_time(text):
            errs.append(
                f.invalid(
                    f.child("spec", name),
                    text,
                    f'must be an RFC 3339 time with microseconds ("{MICRO_TIME_LAYOUT}")',
                )
            )
    strategy = f.as_str(spec.get("strategy"), "spec.strategy", errs)
    if strategy and strategy not in STRATEGIES:
        errs.append(f.not_supported("spec.strategy", strategy, list(STRATEGIES)))
    preferred = f.as_str(spec.get("preferredHolder"), "spec.preferredHolder", errs)
    if preferred and not strategy:
        errs.append(f.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    return errs
