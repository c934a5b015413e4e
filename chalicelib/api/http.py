"""Framework-free request and response values for the API layer.

app.py converts Chalice's request into a `Request` and a `Response` back, so everything under
chalicelib/api can be called directly by tests and the local runtime, with no Chalice import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from chalicelib import errors
from chalicelib.api import protobuf

JSON = "application/json"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() in ("true", "1")

    def int_arg(self, name: str) -> int | None:
        value = self.arg(name)
        if value in (None, ""):
            return None
        try:
            return int(value)  # type: ignore[arg-type]
        except ValueError:
            raise errors.BadRequest(f"invalid value for {name}: {value!r} is not an integer") from None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def parsed_body(self) -> dict[str, Any]:
        """The body as a JSON object (JSON or YAML content), or a 400/415."""
        ctype = self.content_type or JSON
        if ctype == protobuf.CONTENT_TYPE:  # kubectl's typed commands (create namespace, ...) send it
            return protobuf.decode(self.body)
        if ctype not in (JSON, "application/yaml", "application/x-yaml", "text/yaml"):
            raise errors.UnsupportedMediaType(ctype)
        if not self.body.strip():
            raise errors.BadRequest("the request body is empty; send the object as JSON")
        try:
            value = json.loads(self.body) if ctype == JSON else yaml.safe_load(self.body)
        except (ValueError, yaml.YAMLError) as e:
            raise errors.BadRequest(f"the request body is not valid {'JSON' if ctype == JSON else 'YAML'}: "
                                    f"{e}") from e
        if not isinstance(value, dict):
            raise errors.BadRequest(f"the request body must be a JSON object, not {type(value).__name__}")
        return value


@dataclass
class Response:
    status: int
    body: Any = None  # a JSON value, or str for pre-encoded bodies
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> str:
        if isinstance(self.body, str):
            return self.body
        return json.dumps(self.body, separators=(",", ":"))


def ok(body: Any, status: int = 200, warnings: list[str] | None = None) -> Response:
    headers = {"Content-Type": JSON}
    if warnings:
        headers["Warning"] = ", ".join(f'299 - "{w}"' for w in warnings)
    return Response(status, body, headers)


def error_response(err: errors.APIError) -> Response:
    headers = {"Content-Type": JSON, **err.headers}
    return Response(err.code, err.status(), headers)
