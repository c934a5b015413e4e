"""GET pods/<name>/log: a container's output, read from CloudWatch Logs, as `kubectl logs` asks for it.

Why it exists: the API server is a Lambda and cannot reach a node's Docker engine (kube-apiserver proxies
this request to the kubelet), so the node agents ship each container attempt's output to CloudWatch Logs
(node-agent/skiff_agent/logship.py) and this module reads it back, with Kubernetes' query parameters and
error messages. `follow` is a bounded long-poll, like a watch: behind API Gateway a response cannot
stream, so it returns what arrived until the container terminates or the watch cap passes.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import errors, settings
from chalicelib.api import verbs
from chalicelib.api.auth import Identity
from chalicelib.api.http import Request, Response
from chalicelib.api.paths import Target
from chalicelib.store import objects as store
from chalicelib.types import fields, registry

log = logging.getLogger("skiff.api.logs")

# One stream per container attempt (its restart count when it started). The node agent writes the same
# format: node-agent/skiff_agent/logship.py STREAM_TEMPLATE (the agent is not in the Lambda bundle, so the
# format is repeated here; change both together).
STREAM_TEMPLATE = "{namespace}/{pod}/{uid}/{container}/{attempt}"
TEXT = "text/plain"
_PAGE = 10_000  # GetLogEvents' largest page
_sleep = time.sleep  # the follow loop's pause (tests replace it to act between polls)

LogsClient = Any  # botocore's generated client class is not importable for annotations
Obj = dict[str, Any]


@functools.cache
def _client(region: str, endpoint: str | None) -> LogsClient:
    import boto3

    return boto3.client("logs", region_name=region)  # AWS_ENDPOINT_URL is honoured by botocore itself


def logs_client() -> LogsClient:
    """The process's CloudWatch Logs client (one per region and endpoint), created on first use."""
    return _client(settings.region(), os.environ.get("AWS_ENDPOINT_URL"))


def reset() -> None:
    """Forget the cached client (tests that start a fresh moto)."""
    _client.cache_clear()


@dataclass(frozen=True)
class LogOptions:
    """PodLogOptions from the query string."""

    container: str | None = None
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_ms: int | None = None
    limit_bytes: int | None = None


def parse_options(req: Request, name: str, *, now: float | None = None) -> LogOptions:
    """The request's PodLogOptions: 400 for a value that does not parse, 422 for one Kubernetes refuses."""
    tail, limit, since_seconds = req.int_arg("tailLines"), req.int_arg("limitBytes"), req.int_arg("sinceSeconds")
    since_time = _since_time(req.arg("sinceTime"))
    causes: list[errors.Cause] = []
    if tail is not None and tail < 0:
        causes.append(fields.invalid("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(fields.invalid("limitBytes", limit, "must be greater than 0"))
    if since_seconds is not None and since_time is not None:
        causes.append(fields.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif since_seconds is not None and since_seconds < 1:
        causes.append(fields.invalid("sinceSeconds", since_seconds, "must be greater than 0"))
    if causes:
        raise errors.Invalid("PodLogOptions", name, causes)
    since_ms = since_time
    if since_seconds is not None:
        since_ms = int(((time.time() if now is None else now) - since_seconds) * 1000)
    return LogOptions(container=req.arg("container") or None, follow=req.flag("follow"),
                      previous=req.flag("previous"), timestamps=req.flag("timestamps"), tail_lines=tail,
                      since_ms=since_ms, limit_bytes=limit)


def _since_time(value: str | None) -> int | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise errors.BadRequest(f"invalid value for sinceTime: {value!r} is not an RFC3339 time "
                                "(2006-01-02T15:04:05Z)") from None
    if parsed.tzinfo is None:
        raise errors.BadRequest(f"invalid value for sinceTime: {value!r} has no time zone (end it with Z)")
    return int(parsed.timestamp() * 1000)


def pod_log(req: Request, target: Target, ident: Identity) -> Response:
    """GET /api/v1/namespaces/<ns>/pods/<name>/log."""
    name = target.name or ""
    if ident.role != "admin":  # a node reads its pods' output from Docker, not from here
        raise errors.Forbidden(
            f'pods "{name}" is forbidden: User "{ident.user}" cannot get resource "pods/log" in API group "" '
            f'in the namespace "{target.namespace}"', resource="pods", name=name)
    opts = parse_options(req, name)
    pod = verbs.read(Target(target.resource, target.namespace, name))
    container = choose_container(pod, opts.container)
    source = _LogSource(pod, container)
    attempt = source.attempt(previous=opts.previous)
    out = _Output(opts, settings.log_max_bytes())
    token: str | None = None
    if attempt is not None:
        events, token = source.read_initial(attempt, opts)
        out.add(events)
    if opts.follow and not out.full:
        _follow(source, attempt, token, opts, out)
    if out.capped:
        log.warning("log of pod %s/%s container %s cut at %d bytes (SKIFF_LOG_MAX_BYTES)",
                    target.namespace, name, container, out.limit)
    return Response(200, out.text(), {"Content-Type": TEXT})


def choose_container(pod: Obj, wanted: str | None) -> str:
    """The container the request names, or the pod's only one; 400 in kube-apiserver's words otherwise."""
    name = (pod.get("metadata") or {}).get("name", "")
    spec = pod.get("spec") or {}
    containers = [c.get("name", "") for c in spec.get("containers") or []]
    inits = [c.get("name", "") for c in spec.get("initContainers") or []]
    if wanted:
        if wanted not in containers and wanted not in inits:
            raise errors.BadRequest(f"container {wanted} is not valid for pod {name}")
        return wanted
    if len(containers) == 1:
        return containers[0]
    if not containers:
        raise errors.BadRequest(f"a container name must be specified for pod {name}")
    message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
    if inits:
        message += f" or one of the init containers: [{' '.join(inits)}]"
    raise errors.BadRequest(message)


def container_status(pod: Obj, container: str) -> Obj:
    status = pod.get("status") or {}
    for entry in [*(status.get("containerStatuses") or []), *(status.get("initContainerStatuses") or [])]:
        if entry.get("name") == container:
            return dict(entry)
    return {}


def _waiting_message(pod_name: str, container: str, status: Obj) -> str:
    reason = ((status.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating"
    what = {"ErrImagePull": "image can't be pulled",
            "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
    return f'container "{container}" in pod "{pod_name}" is waiting to start: {what}'


class _LogSource:
    """One container's streams in CloudWatch Logs and which attempt a request reads."""

    def __init__(self, pod: Obj, container: str) -> None:
        md = pod.get("metadata") or {}
        self.namespace = md.get("namespace", "")
        self.pod_name = md.get("name", "")
        self.uid = md.get("uid", "")
        self.container = container
        self.status = container_status(pod, container)
        self.group = settings.container_log_group()
        self.client = logs_client()
        self.attempts = self.shipped_attempts()

    def stream(self, attempt: int) -> str:
        return STREAM_TEMPLATE.format(namespace=self.namespace, pod=self.pod_name, uid=self.uid,
                                      container=self.container, attempt=attempt)

    def shipped_attempts(self) -> set[int]:
        """The attempts with a stream (the agent creates it when the attempt starts)."""
        prefix = self.stream(0).removesuffix("0")
        found: set[int] = set()
        try:
            pages = self.client.get_paginator("describe_log_streams").paginate(
                logGroupName=self.group, logStreamNamePrefix=prefix)
            for page in pages:
                for s in page.get("logStreams") or []:
                    rest = s["logStreamName"][len(prefix):]
                    if rest.isdigit():
                        found.add(int(rest))
        except ClientError as e:
            if _code(e) == "ResourceNotFoundException":  # no container of the cluster has shipped yet
                return set()
            raise _translate(e) from e
        return found

    def current(self) -> int:
        """The attempt that runs now (or is about to): the restart count, or a newer shipped attempt when
        the status lags behind the agent."""
        return max([int(self.status.get("restartCount") or 0), *self.attempts])

    def attempt(self, *, previous: bool) -> int | None:
        """The attempt to read; None when it started but shipped nothing yet. 400 when there is none."""
        current = self.current()
        earlier = [a for a in self.attempts if a < current]
        if previous:
            if not earlier:
                raise errors.BadRequest(f'previous terminated container "{self.container}" in pod '
                                        f'"{self.pod_name}" not found')
            return max(earlier)
        if current in self.attempts:
            return current
        state = self.status.get("state") or {}
        if "running" in state or "terminated" in state:
            return None  # started; the agent has not created its stream yet
        if earlier:  # waiting to restart (a crash loop): the last terminated attempt, as the kubelet shows
            return max(earlier)
        raise errors.BadRequest(_waiting_message(self.pod_name, self.container, self.status))

    def _get(self, stream: str, **kwargs: Any) -> Obj:
        try:
            return dict(self.client.get_log_events(logGroupName=self.group, logStreamName=stream, **kwargs))
        except ClientError as e:
            if _code(e) == "ResourceNotFoundException":
                return {"events": [], "nextForwardToken": kwargs.get("nextToken")}
            raise _translate(e) from e

    def read_initial(self, attempt: int, opts: LogOptions) -> tuple[list[Obj], str | None]:
        """The events a request starts with, and the token to read on from."""
        stream = self.stream(attempt)
        base: dict[str, Any] = {"startTime": opts.since_ms} if opts.since_ms is not None else {}
        if opts.tail_lines is None:
            return self.read_forward(stream, None, base, limit_bytes=opts.limit_bytes)
        return self._read_tail(stream, opts.tail_lines, base)

    def read_forward(self, stream: str, token: str | None, base: dict[str, Any], *,
                     limit_bytes: int | None = None) -> tuple[list[Obj], str | None]:
        """Events after `token` (from the start without one), until the stream's end or `limit_bytes`."""
        events: list[Obj] = []
        size = 0
        cap = min(limit_bytes or settings.log_max_bytes(), settings.log_max_bytes())
        while True:
            kwargs = {**base, "nextToken": token} if token else {**base, "startFromHead": True}
            page = self._get(stream, **kwargs)
            got = page.get("events") or []
            events += got
            size += sum(len(str(e.get("message", "")).encode()) + 1 for e in got)
            nxt = page.get("nextForwardToken")
            if not got or nxt in (None, token) or size >= cap:
                return events, nxt or token
            token = nxt

    def _read_tail(self, stream: str, lines: int, base: dict[str, Any]) -> tuple[list[Obj], str | None]:
        first = self._get(stream, **base, startFromHead=False, limit=max(1, min(lines, _PAGE)))
        forward = first.get("nextForwardToken")
        events: list[Obj] = list(first.get("events") or []) if lines else []
        token = first.get("nextBackwardToken")
        while events and len(events) < lines and token:
            page = self._get(stream, **base, nextToken=token, limit=min(lines - len(events), _PAGE))
            got = page.get("events") or []
            if not got or page.get("nextBackwardToken") == token:
                break
            events = got + events
            token = page.get("nextBackwardToken")
        return events[-lines:] if lines else [], forward

    def terminated(self, attempt: int | None) -> bool:
        """Whether the attempt being followed has ended: the container's status says so, a later attempt
        started, or the pod is gone (reads the pod again)."""
        pod = store.get(registry.PODS.key, store.object_key(self.namespace, self.pod_name))
        if pod is None or (pod.get("metadata") or {}).get("uid") != self.uid:
            return True
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return True
        self.status = container_status(pod, self.container)
        restarts = int(self.status.get("restartCount") or 0)
        if attempt is None:  # nothing shipped yet: the current attempt is the one to wait for
            attempt = self.current()
        if attempt < restarts:
            return True
        return attempt == restarts and "terminated" in (self.status.get("state") or {})


class _Output:
    """The response body: lines with optional timestamps, cut at limitBytes (or the response cap)."""

    def __init__(self, opts: LogOptions, max_bytes: int) -> None:
        self.timestamps = opts.timestamps
        self.limit = min(opts.limit_bytes or max_bytes, max_bytes)
        self.cut_by_server = opts.limit_bytes is None or opts.limit_bytes > max_bytes
        self.capped = False  # cut at the server's cap rather than the caller's limitBytes
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def full(self) -> bool:
        return self._size >= self.limit

    def add(self, events: list[Obj]) -> None:
        for e in events:
            if self.full:
                return
            line = f"{e.get('message', '')}\n"
            if self.timestamps:
                line = f"{format_timestamp(int(e['timestamp']))} {line}"
            data = line.encode("utf-8")
            if self._size + len(data) > self.limit:
                data = data[:self.limit - self._size]
                self.capped = self.cut_by_server
            self._parts.append(data)
            self._size += len(data)

    def text(self) -> str:
        return b"".join(self._parts).decode("utf-8", errors="ignore")


def format_timestamp(ms: int) -> str:
    """RFC3339 with nine fractional digits, as the kubelet prints `--timestamps`."""
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}000000Z"


def _follow(source: _LogSource, attempt: int | None, token: str | None, opts: LogOptions, out: _Output) -> None:
    """Poll for new lines until the container terminates or the watch cap passes (a bounded long-poll)."""
    deadline = time.monotonic() + settings.watch_cap_seconds()
    base: dict[str, Any] = {"startTime": opts.since_ms} if opts.since_ms is not None else {}
    while True:
        done = source.terminated(attempt)
        if attempt is None:  # started without a stream: read it once it exists
            current = source.current()
            shipped = source.shipped_attempts()
            if current in shipped:
                attempt, source.attempts = current, shipped
        if attempt is not None:
            events, token = source.read_forward(source.stream(attempt), token, base)
            out.add(events)
        left = deadline - time.monotonic()
        if done or out.full or left <= 0:
            return
        _sleep(min(settings.log_poll_seconds(), left))


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _translate(e: ClientError) -> errors.APIError:
    if _code(e) in ("ThrottlingException", "LimitExceededException"):
        return errors.TooManyRequests("CloudWatch Logs is throttling reads of container logs; try again")
    return errors.InternalError(f"reading container logs from CloudWatch Logs failed: {_code(e) or e}")
