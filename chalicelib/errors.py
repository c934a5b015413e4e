"""API errors as Kubernetes Status objects.

Every failure a client can see is one of these. Each class fixes the HTTP code and the
Kubernetes `reason`, so handlers raise meaning ("this conflicts") and the API layer turns it into
the Status body kubectl and client-go parse. Store errors are translated here too, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One bad field of an Invalid (422) error, as `details.causes[]`."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class APIError(Exception):
    """Base of all errors returned as a Kubernetes Status."""

    message: str
    code: int = 500
    reason: str = "InternalError"
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: str | None, name: str | None, group: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    return details


def qualified(resource: str, group: str) -> str:
    """`deployments.apps` for a grouped resource, `pods` for the core group (as Kubernetes prints)."""
    return f"{resource}.{group}" if group else resource


class BadRequest(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=400, reason="BadRequest")


class Unauthorized(APIError):
    def __init__(self, message: str = "Unauthorized") -> None:
        super().__init__(message=message, code=401, reason="Unauthorized")


class Forbidden(APIError):
    def __init__(self, message: str, *, resource: str = "", group: str = "", name: str = "") -> None:
        super().__init__(message=message, code=403, reason="Forbidden",
                         details=_details(resource, name, group))


class NotFound(APIError):
    def __init__(self, resource: str, name: str, group: str = "", message: str | None = None) -> None:
        msg = message or f'{qualified(resource, group)} "{name}" not found'
        super().__init__(message=msg, code=404, reason="NotFound", details=_details(resource, name, group))


class PathNotFound(APIError):
    def __init__(self, path: str) -> None:
        super().__init__(message=f"the server could not find the requested resource ({path})",
                         code=404, reason="NotFound")


class MethodNotAllowed(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=405, reason="MethodNotAllowed")


class AlreadyExists(APIError):
    def __init__(self, resource: str, name: str, group: str = "") -> None:
        super().__init__(message=f'{qualified(resource, group)} "{name}" already exists', code=409,
                         reason="AlreadyExists", details=_details(resource, name, group))


class Conflict(APIError):
    def __init__(self, resource: str, name: str, group: str = "", message: str | None = None) -> None:
        msg = message or (
            f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again")
        super().__init__(message=msg, code=409, reason="Conflict", details=_details(resource, name, group))


class Gone(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=410, reason="Expired")


class TooLarge(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(message=message, code=413, reason="RequestEntityTooLarge")


class UnsupportedMediaType(APIError):
    def __init__(self, content_type: str) -> None:
        super().__init__(message=f'the body of the request was in an unknown format - accepted media types '
                         f'include: application/json, application/yaml, application/merge-patch+json, '
                         f'application/json-patch+json, application/strategic-merge-patch+json, '
                         f'application/apply-patch+yaml (got "{content_type}")',
                         code=415, reason="UnsupportedMediaType")


class Invalid(APIError):
    def __init__(self, kind: str, name: str, causes: list[Cause], group: str = "") -> None:
        joined = ", ".join(f"{c.field}: {c.message}" for c in causes)
        qual = f"{kind}.{group}" if group else kind
        details = _details(kind, name, group)
        details["causes"] = [c.to_dict() for c in causes]
        super().__init__(message=f'{qual} "{name}" is invalid: {joined}', code=422, reason="Invalid",
                         details=details)


class TooManyRequests(APIError):
    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message=message, code=429, reason="TooManyRequests",
                         details={"retryAfterSeconds": retry_after},
                         headers={"Retry-After": str(retry_after)})


class InternalError(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(message=f"Internal error occurred: {message}", code=500, reason="InternalError")
