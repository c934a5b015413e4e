"""Skiff's Chalice app: the Kubernetes API on API Gateway + Lambda, and the controllers.

Thin on purpose: every path goes to chalicelib.api.server.handle, which parses Kubernetes REST paths
itself. API Gateway and Chalice have no greedy path parameter that Chalice supports, so the app
declares one catch-all route per path depth (the deepest Kubernetes path has eight segments).
The objects table's stream drives the controllers (chalicelib.controllers.dispatch) and a schedule
resyncs them; Chalice needs the stream's ARN when this module is imported, so it comes from the
stage's environment (SKIFF_OBJECTS_STREAM_ARN), set by the deployment.
"""

from __future__ import annotations

import contextlib
from typing import Any

from chalice import Chalice, Response
from chalice.app import DynamoDBEvent

from chalicelib import settings
from chalicelib.api.http import Request
from chalicelib.api.server import handle
from chalicelib.controllers import dispatch
from chalicelib.controllers.client import Client
from chalicelib.provisioner.reconcile import reconcile_settled
from chalicelib.store import locks

# Chalice would attach its own handler to the "skiff" logger and stop propagation, hiding the logs of
# skiff.* modules from the root handler (Lambda's, and the tests').
app = Chalice(app_name="skiff", configure_logs=False)
app.api.binary_types = []  # every body is text (JSON or YAML)

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_MAX_DEPTH = 8


def _serve(*segments: str) -> Response:
    current = app.current_request
    assert current is not None
    query: dict[str, list[str]] = {}
    if current.query_params:
        for name in current.query_params:
            query[name] = list(current.query_params.getlist(name))
    headers = {k.lower(): v for k, v in current.headers.items()}
    req = Request(method=current.method, path="/" + "/".join(segments), query=query, headers=headers,
                  body=_raw_body(current.raw_body))
    resp = handle(req)
    out_headers: dict[str, str | list[str]] = dict(resp.headers)
    return Response(body=resp.encoded(), status_code=resp.status, headers=out_headers)


def _raw_body(raw: str | bytes | None) -> bytes:
    if raw is None:
        return b""
    return raw.encode("utf-8") if isinstance(raw, str) else raw


@app.route("/", methods=_METHODS, content_types=["*/*"])
def root() -> Response:
    return _serve()


def _register(depth: int) -> None:
    params = [f"p{i}" for i in range(1, depth + 1)]
    path = "/" + "/".join("{" + p + "}" for p in params)

    def view(**kwargs: str) -> Response:
        return _serve(*(kwargs[p] for p in params))

    view.__name__ = f"depth_{depth}"
    app.route(path, methods=_METHODS, content_types=["*/*"])(view)


for _depth in range(1, _MAX_DEPTH + 1):
    _register(_depth)


@app.on_dynamodb_record(stream_arn=settings.objects_stream_arn(), batch_size=100,
                        maximum_batching_window_in_seconds=round(settings.stream_batch_window_seconds()),
                        name="controllers")
def on_objects_change(event: DynamoDBEvent) -> None:
    dispatch.handle_records(event.to_dict()["Records"])


@app.on_dynamodb_record(stream_arn=settings.objects_stream_arn(), batch_size=100,
                        maximum_batching_window_in_seconds=round(settings.stream_batch_window_seconds()),
                        name="provisioner")
def on_capacity_change(event: DynamoDBEvent) -> None:
    """The provisioner has its own function (the stream's second reader): it waits for a batch of
    unschedulable pods to settle (up to ~12 s) without holding up the controllers."""
    if dispatch.provisioner_wanted(event.to_dict()["Records"]):
        with contextlib.suppress(locks.Held):  # another invocation is already provisioning
            reconcile_settled(Client())


@app.schedule("rate(1 minute)", name="resync")
def resync(event: Any) -> None:
    dispatch.resync()
