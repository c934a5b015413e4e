"""apps/v1 types: defaults and validation. (Being written: placeholder hooks.)"""
from __future__ import annotations

from typing import Any

from chalicelib.errors import Cause

Obj = dict[str, Any]


def _nothing(obj: Obj) -> None:
    return None


def _valid(obj: Obj, old: Obj | None) -> list[Cause]:
    return []


default_deployment = default_replicaset = _nothing
validate_deployment = validate_replicaset = _valid
