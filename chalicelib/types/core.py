"""Core v1 types: defaults and validation. (Being written: placeholder hooks.)"""
from __future__ import annotations

from typing import Any

from chalicelib.errors import Cause

Obj = dict[str, Any]


def _nothing(obj: Obj) -> None:
    return None


def _valid(obj: Obj, old: Obj | None) -> list[Cause]:
    return []


default_namespace = default_node = default_pod = default_event = default_service = _nothing
validate_namespace = validate_node = validate_pod = validate_event = validate_configmap = _valid
validate_service = _valid


def initial_namespace_status(obj: Obj) -> Obj:
    return {"phase": "Active"}


def initial_pod_status(obj: Obj) -> Obj:
    return {"phase": "Pending"}
