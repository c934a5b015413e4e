"""coordination.k8s.io/v1 Lease validation."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.types import fields as f
from chalicelib.types.coordination import is_micro_time, validate_lease

TIME_MSG = 'must be an RFC 3339 time with microseconds ("2006-01-02T15:04:05.000000Z07:00")'


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, []),
        (
            {
                "holderIdentity": "node-1",
                "leaseDurationSeconds": 40,
                "leaseTransitions": 0,
                "acquireTime": "2024-05-01T10:00:00.000000Z",
                "renewTime": "2024-05-01T10:00:10.123456+02:00",
            },
            [],
        ),
        (
            {"leaseDurationSeconds": 0},
            [("spec.leaseDurationSeconds", f.INVALID, "Invalid value: 0: must be greater than 0")],
        ),
        (
            {"leaseTransitions": -1},
            [("spec.leaseTransitions", f.INVALID, "Invalid value: -1: must be greater than or equal to 0")],
        ),
        (
            {"renewTime": "2024-05-01T10:00:10Z"},
            [("spec.renewTime", f.INVALID, f'Invalid value: "2024-05-01T10:00:10Z": {TIME_MSG}')],
        ),
        (
            {"acquireTime": "yesterday"},
            [("spec.acquireTime", f.INVALID, f'Invalid value: "yesterday": {TIME_MSG}')],
        ),
        (
            {"holderIdentity": 5},
            [("spec.holderIdentity", f.TYPE_INVALID, "Invalid value: 5: must be of type string")],
        ),
        (
            {"leaseDurationSeconds": "15"},
            [("spec.leaseDurationSeconds", f.TYPE_INVALID, 'Invalid value: "15": must be of type integer')],
        ),
        (
            {"preferredHolder": "a"},
            [
                (
                    "spec.preferredHolder",
                    f.FORBIDDEN,
                    "Forbidden: may only be specified if `strategy` is defined",
                )
            ],
        ),
        (
            {"strategy": "Newest"},
            [
                (
                    "spec.strategy",
                    f.NOT_SUPPORTED,
                    'Unsupported value: "Newest": supported values: "OldestEmulationVersion"',
                )
            ],
        ),
    ],
)
def test_lease_validation(spec: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    causes = validate_lease({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": spec}, None)
    assert [(c.field, c.reason, c.message) for c in causes] == expected


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2024-05-01T10:00:00.000000Z", True),
        ("2024-05-01T10:00:00.999999-07:00", True),
        ("2024-05-01T10:00:00.123Z", False),
        ("2024-05-01T10:00:00.1234567Z", False),
        ("2024-13-01T10:00:00.000000Z", False),
        ("2024-05-01 10:00:00.000000Z", False),
    ],
)
def test_micro_time(text: str, ok: bool) -> None:
    assert is_micro_time(text) is ok


def test_lease_spec_of_wrong_type() -> None:
    [cause] = validate_lease({"spec": ["x"]}, None)
    assert (cause.field, cause.reason) == ("spec", f.TYPE_INVALID)
