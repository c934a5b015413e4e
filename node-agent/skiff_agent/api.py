"""The cluster's HTTP API as a node sees it: one call at a time, a bearer token, the cluster's CA.

Why this exists: the agent (and the local runtime's hollow nodes) talk to the control plane only
through the Kubernetes API with a node credential (DESIGN.md invariant 6), never to its tables. A
non-2xx answer becomes ApiError carrying the Status's code, reason and message, so callers branch on
404/409 the way a kubelet does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

MERGE_PATCH = "application/merge-patch+json"
USER_AGENT = "skiff-agent/0.1.0"


class ApiError(Exception):
    """A non-2xx answer from the API: the HTTP status and the Status message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class ApiUnreachable(OSError):
    """The API did not answer (connection refused or dropped, TLS cut, timeout): try again later."""


class Transport(Protocol):
    """One API call: the decoded JSON answer, or ApiError."""

    def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: Any = None,
                content_type: str = "application/json") -> Any: ...


class HTTPTransport:
    """The API over HTTPS with a bearer token, trusting only the cluster's CA (or the system's when
    no CA file is given, as behind API Gateway)."""

    def __init__(self, api_url: str, token: str, ca_file: Path | str | None = None, *, timeout: float = 15.0,
                 user_agent: str = USER_AGENT, pool_size: int = 4) -> None:
        import urllib3

        self.base = api_url.rstrip("/")
        self.token = token
        self._user_agent = user_agent
        self._timeout = urllib3.Timeout(connect=5.0, read=timeout)
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
        if ca_file:
            tls["ca_certs"] = str(ca_file)
        self._http = urllib3.PoolManager(num_pools=1, maxsize=pool_size, retries=False, **tls)

    def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: Any = None,
                content_type: str = "application/json", timeout: float | None = None) -> Any:
        import urllib3

        url = self.base + path + (f"?{urlencode(dict(query))}" if query else "")
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        t = self._timeout if timeout is None else urllib3.Timeout(connect=5.0, read=timeout)
        try:
            resp = self._http.request(method, url, body=data, headers=headers, timeout=t)
        except urllib3.exceptions.HTTPError as e:
            raise ApiUnreachable(f"{method} {path}: {e}") from e
        return decode_response(resp.status, resp.data)

    def watch(self, path: str, query: Mapping[str, str], *, timeout: float) -> Iterator[Any]:
        """The events of a watch, one decoded JSON object per line, until the server closes it."""
        import urllib3

        url = self.base + path + f"?{urlencode(dict(query))}"
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            resp = self._http.request("GET", url, headers=headers, preload_content=False,
                                      timeout=urllib3.Timeout(connect=5.0, read=timeout))
        except urllib3.exceptions.HTTPError as e:
            raise ApiUnreachable(f"watch {path}: {e}") from e
        try:
            if resp.status != 200:
                decode_response(resp.status, resp.read())
            buffer = b""
            chunks = resp.stream(64 * 1024, decode_content=True)
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except urllib3.exceptions.HTTPError as e:
                    raise ApiUnreachable(f"watch {path}: {e}") from e
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip():
                yield json.loads(buffer)
        finally:
            resp.release_conn()

    def close(self) -> None:
        self._http.clear()


def decode_response(status: int, data: bytes | str) -> Any:
    """The JSON body of a 2xx answer; ApiError with the Status's reason and message otherwise."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        return body
    if isinstance(body, dict):
        raise ApiError(status, str(body.get("reason") or ""), str(body.get("message") or text[:200]))
    raise ApiError(status, "", text[:200])
