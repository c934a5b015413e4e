"""Streaming watches for the local server.

On AWS a watch is a bounded long-poll (API Gateway cannot stream), and clients re-watch from the
last resourceVersion. Not every client does: `kubectl get -w` exits when its watch connection
closes. Locally nothing stops us from streaming, so the local server re-runs the same handler's
long-poll from the last resourceVersion it delivered and writes each batch to one chunked response
until the client's timeoutSeconds (or half an hour) runs out: what a client sees is exactly the
sequence of the handler's own responses, joined.
"""

from __future__ import annotations

import json
import ssl
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

from chalice.local import ChaliceRequestHandler

DEFAULT_STREAM_SECONDS = 1800.0


class StreamingRequestHandler(ChaliceRequestHandler):
    """Chalice's local handler, with GET ...?watch=true streamed."""

    # The handler writes headers and body in separate sends; with Nagle's algorithm on, the second
    # waits for the client's delayed ACK (~40 ms on Linux) on every keep-alive request.
    disable_nagle_algorithm = True

    def _generic_handle(self) -> None:
        query = parse_qs(urlparse(self.path).query, keep_blank_values=True)
        if self.command == "GET" and (query.get("watch") or [""])[-1].lower() in ("true", "1"):
            try:
                self._stream_watch(query)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):  # the client went away mid-watch
                self.close_connection = True
            return
        super()._generic_handle()

    # The base class binds its verbs to its own _generic_handle; bind them to ours.
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _stream_watch(self, query: dict[str, list[str]]) -> None:
        from chalicelib import settings
        from chalicelib.api.http import Request
        from chalicelib.api.server import handle

        path = urlparse(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        wants_bookmarks = (query.get("allowWatchBookmarks") or [""])[-1].lower() in ("true", "1")
        asked = (query.get("timeoutSeconds") or [""])[-1]
        total = float(asked) if asked.isdigit() and int(asked) > 0 else DEFAULT_STREAM_SECONDS
        deadline = time.monotonic() + total
        rv: str | None = (query.get("resourceVersion") or [""])[-1] or None
        started = False
        while True:
            remaining = deadline - time.monotonic()
            q = dict(query)
            q["allowWatchBookmarks"] = ["true"]  # the cursor comes back even when nothing matched
            q["timeoutSeconds"] = [str(max(1, int(min(remaining, settings.watch_cap_seconds()))))]
            if rv is not None:
                q["resourceVersion"] = [rv]
            resp = handle(Request(method="GET", path=path, query=q, headers=headers, body=b""))
            if not started:
                if resp.status != 200:
                    body = resp.encoded()
                    self._send_http_response(resp.status, dict(resp.headers), body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                started = True
            out: list[str] = []
            ended = False
            for line in resp.encoded().splitlines():
                if not line.strip():
                    continue
                event: dict[str, Any] = json.loads(line)
                kind = event.get("type")
                meta = (event.get("object") or {}).get("metadata") or {}
                if kind == "ERROR":
                    out.append(line)
                    ended = True
                    break
                if meta.get("resourceVersion"):
                    rv = str(meta["resourceVersion"])
                if kind == "BOOKMARK" and not wants_bookmarks:
                    continue
                out.append(line)
            if out:
                self._chunk(("\n".join(out) + "\n").encode())
            if ended or time.monotonic() >= deadline:
                break
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
