"""Ships container output to CloudWatch Logs, where the API reads it back for `kubectl logs`.

Why it exists: Skiff's API server is a Lambda and cannot reach a node's Docker engine, so the agent
copies each container's output to CloudWatch Logs and the API (chalicelib/api/logs.py) serves it from
there. The group and stream names below are a contract with that module, which keeps its own copy of
the stream format because this package is not part of the Lambda bundle.

How: one reader thread per followed container reads Docker's log stream with timestamps and queues
the lines; one sender thread batches them (at most 1 s, 1000 events or 1 MB) into PutLogEvents.
A restarted agent resumes after the last event already in the stream, so no line is shipped twice.
CloudWatch errors are logged and retried with back-off and never end the agent; while CloudWatch is
unreachable, lines wait in a bounded buffer that drops its oldest lines (with a warning) when full.
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("skiff_agent.logship")

LOG_GROUP_TEMPLATE = "/skiff/{cluster}/containers"
# One stream per container attempt (the container's restart count when it started).
# chalicelib/api/logs.py holds the same format (STREAM_TEMPLATE); change both together.
STREAM_TEMPLATE = "{namespace}/{pod}/{uid}/{container}/{attempt}"

BATCH_SECONDS = 1.0
BATCH_EVENTS = 1000
EVENT_OVERHEAD = 26  # bytes PutLogEvents counts per event on top of its message
BATCH_BYTES = 1024 * 1024
MAX_MESSAGE_BYTES = 256 * 1024 - EVENT_OVERHEAD
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000 - 60_000  # a batch may not span more than 24 h
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
# Docker prefixes each line with its RFC3339Nano time: 2024-05-01T12:00:00.123456789Z
_TIMESTAMP = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")
_EXITED = frozenset({"exited", "dead"})

Event = tuple[int, str]  # (milliseconds since the epoch, message)


def log_group(cluster: str) -> str:
    """The CloudWatch Logs group of a cluster's container output."""
    return LOG_GROUP_TEMPLATE.format(cluster=cluster)


def stream_name(namespace: str, pod: str, uid: str, container: str, attempt: int) -> str:
    """The stream of one container attempt; `attempt` is the container's restart count when it started."""
    return STREAM_TEMPLATE.format(namespace=namespace, pod=pod, uid=uid, container=container, attempt=attempt)


def parse_line(raw: bytes) -> Event | None:
    """A Docker log line (`<RFC3339Nano time> <text>`, no newline) as an event; None if it has no time."""
    stamp, sep, text = raw.partition(b" ")
    m = _TIMESTAMP.fullmatch(stamp)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    zone = m.group(8)
    if zone != b"Z":
        sign = 1 if zone[:1] == b"+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    millis = int((m.group(7) or b"0")[:3].ljust(3, b"0"))
    return seconds * 1000 + millis, text.decode("utf-8", errors="replace")


def split_message(message: str) -> list[str]:
    """A line as CloudWatch messages: at most MAX_MESSAGE_BYTES each, never empty (CloudWatch refuses an
    empty message, so an empty line is shipped as one space)."""
    data = message.encode("utf-8")
    if not data:
        return [" "]
    if len(data) <= MAX_MESSAGE_BYTES:
        return [message]
    pieces: list[str] = []
    while data:
        cut = min(MAX_MESSAGE_BYTES, len(data))
        while cut < len(data) and data[cut] & 0xC0 == 0x80:  # not inside a UTF-8 sequence
            cut -= 1
        pieces.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    return pieces


def _size(event: Event) -> int:
    return len(event[1].encode("utf-8")) + EVENT_OVERHEAD


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code") or "")
    return ""


class _Backoff:
    def __init__(self) -> None:
        self.delay = 0.0

    def next(self) -> float:
        self.delay = BACKOFF_FIRST if self.delay == 0 else min(self.delay * 2, BACKOFF_MAX)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


class _Resume:
    """Where a stream's shipped output ends, so a (re)opened Docker stream skips what is already shipped.

    Docker's `since` is inclusive and CloudWatch keeps milliseconds, so a reopened stream repeats the lines
    of the last shipped millisecond: those whose messages were shipped at that time are dropped once each.
    Times never go backwards in a stream (a line stamped earlier than its predecessor, as stdout and
    stderr can be, is shipped at its predecessor's time) so CloudWatch reads them back in Docker's order.
    """

    def __init__(self, last_ms: int | None, shipped_at_last: Counter[str]) -> None:
        self.last_ms = last_ms
        self.at_last: Counter[str] = Counter(shipped_at_last)
        self.skip: Counter[str] = Counter(shipped_at_last)

    def since(self) -> float | None:
        """Docker's `since` (seconds; str() of a float is its shortest form, so no rounding below a ms)."""
        return None if self.last_ms is None else self.last_ms / 1000

    def reopen(self) -> None:
        self.skip = Counter(self.at_last)

    def admit(self, ms: int, message: str) -> int | None:
        """The time to ship a line at, or None when it was shipped already."""
        if self.last_ms is not None:
            if self.skip:
                if ms <= self.last_ms and self.skip[message] > 0:
                    self.skip[message] -= 1
                    return None
                if ms > self.last_ms:
                    self.skip.clear()
            if ms <= self.last_ms:
                self.at_last[message] += 1
                return self.last_ms
        self.last_ms = ms
        self.at_last = Counter({message: 1})
        return ms


@dataclass
class _Stream:
    """One followed container: its reader thread and the events waiting to be shipped."""

    container_id: str
    name: str
    max_events: int
    max_bytes: int
    events: deque[Event] = field(default_factory=deque)
    bytes: int = 0
    first_queued: float = 0.0  # monotonic time the oldest waiting event was queued
    retry_at: float = 0.0
    backoff: _Backoff = field(default_factory=_Backoff)
    ready: bool = False  # group and stream exist
    finished: bool = False  # the reader is done: forget the stream once it is drained
    dropped: int = 0
    warned: bool = False
    resume: _Resume | None = None  # what is shipped or queued; kept so a re-follow skips it
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    docker_stream: Any = None

    def push(self, event: Event) -> bool:
        """Queue an event, dropping the oldest beyond the bounds; True if something was dropped."""
        if not self.events:
            self.first_queued = time.monotonic()
        self.events.append(event)
        self.bytes += _size(event)
        dropped = False
        while len(self.events) > self.max_events or self.bytes > self.max_bytes:
            self.bytes -= _size(self.events.popleft())
            self.dropped += 1
            dropped = True
        return dropped

    def take_batch(self) -> list[Event]:
        batch: list[Event] = []
        size = 0
        while self.events and len(batch) < BATCH_EVENTS:
            event = self.events[0]
            if batch and (size + _size(event) > BATCH_BYTES or event[0] - batch[0][0] > MAX_BATCH_SPAN_MS):
                break
            batch.append(self.events.popleft())
            size += _size(event)
        self.bytes -= size
        if self.events:
            self.first_queued = time.monotonic()
        return batch

    def put_back(self, batch: list[Event]) -> None:
        self.events.extendleft(reversed(batch))
        self.bytes += sum(_size(e) for e in batch)
        while len(self.events) > self.max_events or self.bytes > self.max_bytes:
            self.bytes -= _size(self.events.popleft())
            self.dropped += 1

    def due(self, now: float, flushing: bool) -> bool:
        if not self.events or now < self.retry_at:
            return False
        return (flushing or self.finished or len(self.events) >= BATCH_EVENTS or self.bytes >= BATCH_BYTES
                or now - self.first_queued >= BATCH_SECONDS)


class LogShipper:
    """Follows containers' output into CloudWatch Logs streams (see the module docstring).

    `logs` is a boto3 CloudWatch Logs client, `docker` a docker SDK client (docker.DockerClient).
    """

    def __init__(self, logs: Any, group: str, docker: Any, *, max_buffered_events: int = 10_000,
                 max_buffered_bytes: int = 8 * 1024 * 1024) -> None:
        self._logs = logs
        self._group = group
        self._docker = docker
        self._max_events = max_buffered_events
        self._max_bytes = max_buffered_bytes
        self._cond = threading.Condition()
        self._streams: dict[str, _Stream] = {}  # by container id, while followed or not yet drained
        self._done: set[str] = set()  # containers whose output ended: follow() ignores them until stop()
        self._flushing = 0
        self._closed = False
        self._group_ready = False
        self._sender = threading.Thread(target=self._send_loop, name="logship-sender", daemon=True)
        self._sender.start()

    # ---- public API -------------------------------------------------------------------------------------

    def follow(self, container_id: str, stream: str) -> None:
        """Ship `container_id`'s output to `stream` until the container exits. Idempotent: a container
        followed already (or whose output already ended) is left alone until stop(container_id)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the log shipper is closed")
            state = self._streams.get(container_id)
            if container_id in self._done or state is not None and (
                    not state.finished or state.thread is not None and state.thread.is_alive()):
                return
            if state is None or state.name != stream:
                state = _Stream(container_id, stream, self._max_events, self._max_bytes)
                self._streams[container_id] = state
            else:  # stopped but not drained yet: read on from what it queued
                state.stop = threading.Event()
                state.finished = False
            state.thread = threading.Thread(target=self._read, args=(state,), daemon=True,
                                            name=f"logship-{container_id[:12]}")
            state.thread.start()

    def stop(self, container_id: str, timeout: float = 5.0) -> None:
        """Stop reading a container's output (what was read is still shipped) and forget it."""
        with self._cond:
            self._done.discard(container_id)
            state = self._streams.get(container_id)
        if state is not None:
            self._stop_reader(state, timeout)

    def flush(self, timeout: float = 10.0) -> bool:
        """Ship every queued line now; True if all were shipped within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while any(s.events for s in self._streams.values()):
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._sender.is_alive():
                        return False
                    self._cond.wait(min(left, 0.1))
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 10.0) -> bool:
        """Stop every reader, ship what was read (within `timeout`) and end the threads.
        True if everything read was shipped."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            states = list(self._streams.values())
        for state in states:
            self._stop_reader(state, max(0.1, deadline - time.monotonic()))
        shipped = self.flush(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._cond.notify_all()
        self._sender.join(max(0.1, deadline - time.monotonic()))
        return shipped

    # ---- reading Docker ---------------------------------------------------------------------------------

    def _stop_reader(self, state: _Stream, timeout: float) -> None:
        state.stop.set()
        stream = state.docker_stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - already closed, or the socket went away
                log.debug("closing the log stream of %s failed", state.container_id, exc_info=True)
        if state.thread is not None and state.thread is not threading.current_thread():
            state.thread.join(timeout)

    def _read(self, state: _Stream) -> None:
        try:
            if state.resume is None:
                state.resume = self._prepare(state)
            if state.resume is not None:
                self._read_docker(state, state.resume)
        except Exception:  # noqa: BLE001 - a reader never takes the agent down
            log.exception("following the output of container %s failed", state.container_id)
        finally:
            with self._cond:
                state.finished = True
                if not state.stop.is_set():
                    self._done.add(state.container_id)
                if not state.events:
                    self._streams.pop(state.container_id, None)
                self._cond.notify_all()

    def _prepare(self, state: _Stream) -> _Resume | None:
        """Create the group and stream and find where the stream's output ends, retrying until it works
        (Docker keeps the lines meanwhile). None if the reader was stopped first."""
        backoff = _Backoff()
        while not state.stop.is_set():
            try:
                self._ensure_stream(state)
                resume = self._resume_point(state.name)
                with self._cond:
                    state.ready = True
                return resume
            except Exception as e:  # noqa: BLE001 - CloudWatch unreachable or refusing: retry
                delay = backoff.next()
                log.warning("CloudWatch Logs stream %s not ready (%s: %s); retrying in %.1f s",
                            state.name, type(e).__name__, e, delay)
                state.stop.wait(delay)
        return None

    def _ensure_stream(self, state: _Stream) -> None:
        if not self._group_ready:
            try:
                self._logs.create_log_group(logGroupName=self._group)
            except Exception as e:
                if _error_code(e) != "ResourceAlreadyExistsException":
                    raise
            self._group_ready = True
        try:
            self._logs.create_log_stream(logGroupName=self._group, logStreamName=state.name)
        except Exception as e:
            code = _error_code(e)
            if code == "ResourceNotFoundException":  # the group was deleted meanwhile
                self._group_ready = False
            if code != "ResourceAlreadyExistsException":
                raise

    def _resume_point(self, stream: str) -> _Resume:
        """The last shipped time of `stream` and the messages shipped at that time."""
        got = self._logs.get_log_events(logGroupName=self._group, logStreamName=stream, startFromHead=False,
                                         limit=1)
        if not got.get("events"):
            return _Resume(None, Counter())
        last_ms = max(int(e["timestamp"]) for e in got["events"])
        at_last: Counter[str] = Counter()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"nextToken": token} if token else {}
            page = self._logs.get_log_events(logGroupName=self._group, logStreamName=stream, startTime=last_ms,
                                             endTime=last_ms + 1, startFromHead=True, **kwargs)
            at_last.update(e["message"] for e in page.get("events") or [] if int(e["timestamp"]) == last_ms)
            if not page.get("events") or page.get("nextForwardToken") in (None, token):
                break
            token = page["nextForwardToken"]
        return _Resume(last_ms, at_last)

    def _read_docker(self, state: _Stream, resume: _Resume) -> None:
        backoff = _Backoff()
        while not state.stop.is_set():
            try:
                stream = self._open(state, resume, follow=True)
            except Exception as e:  # noqa: BLE001
                if type(e).__name__ == "NotFound":
                    log.info("container %s is gone; its output is shipped up to here", state.container_id)
                    return
                delay = backoff.next()
                log.warning("reading the output of container %s failed (%s); retrying in %.1f s",
                            state.container_id, e, delay)
                state.stop.wait(delay)
                continue
            self._pump(state, resume, stream)  # a partial last line is read again below or on resume
            if state.stop.is_set():
                return
            if self._exited(state.container_id):
                # Docker's follow ends without the last line when it has no newline: read the end once more.
                try:
                    rest = self._pump(state, resume, self._open(state, resume, follow=False))
                except Exception as e:  # noqa: BLE001 - removed meanwhile: what was read is shipped
                    log.info("reading the last output of container %s failed: %s", state.container_id, e)
                    return
                if rest and not state.stop.is_set():
                    self._queue_line(state, resume, rest)
                return
            state.stop.wait(backoff.next())  # Docker closed a running container's stream: reopen it

    def _open(self, state: _Stream, resume: _Resume, *, follow: bool) -> Any:
        """Docker's log stream of the container from where `resume` says the shipped output ends."""
        since = resume.since()
        resume.reopen()
        container = self._docker.containers.get(state.container_id)
        kwargs: dict[str, Any] = {"since": since} if since is not None else {}
        return container.logs(stream=True, follow=follow, timestamps=True, stdout=True, stderr=True, **kwargs)

    def _pump(self, state: _Stream, resume: _Resume, stream: Any) -> bytes:
        """Queue the stream's complete lines until it ends; return what followed the last newline."""
        state.docker_stream = stream
        rest = b""
        try:
            if state.stop.is_set():  # stop() ran before the stream was known to it
                return b""
            for chunk in stream:
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for raw in lines:
                    self._queue_line(state, resume, raw)
        except Exception as e:  # noqa: BLE001 - the connection broke; the caller sees whether it exited
            log.debug("output stream of %s ended: %s", state.container_id, e)
        finally:
            state.docker_stream = None
            stream.close()
        return rest

    def _exited(self, container_id: str) -> bool:
        try:
            container = self._docker.containers.get(container_id)
        except Exception as e:  # noqa: BLE001
            return type(e).__name__ == "NotFound"
        return container.status in _EXITED

    def _queue_line(self, state: _Stream, resume: _Resume, raw: bytes) -> None:
        event = parse_line(raw)
        if event is None:  # not from Docker's timestamped output; keep it, at the time it was read
            event = (int(time.time() * 1000), raw.decode("utf-8", errors="replace"))
        at = resume.admit(*event)
        if at is None:
            return
        dropped = False
        with self._cond:
            for message in split_message(event[1]):
                dropped = state.push((at, message)) or dropped
            if len(state.events) >= BATCH_EVENTS or state.bytes >= BATCH_BYTES:
                self._cond.notify_all()
        if dropped and not state.warned:
            state.warned = True
            log.warning("log buffer of %s is full (CloudWatch unreachable?): dropping its oldest lines",
                        state.name)

    # ---- shipping to CloudWatch -------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [s for s in self._streams.values() if s.due(now, self._flushing > 0)]
                if not due:
                    if self._closed and (not self._flushing and all(s.finished for s in self._streams.values())):
                        return
                    self._cond.wait(self._wait_time(now))
                    continue
            for state in due:
                self._ship(state)

    def _wait_time(self, now: float) -> float:
        times = [max(s.retry_at, s.first_queued + BATCH_SECONDS) - now
                 for s in self._streams.values() if s.events]
        return min([BATCH_SECONDS, *times]) if times else BATCH_SECONDS

    def _ship(self, state: _Stream) -> None:
        with self._cond:
            batch = state.take_batch()
        if not batch:
            return
        try:
            if not state.ready:  # its group or stream was deleted under us
                self._ensure_stream(state)
                state.ready = True
            reply = self._logs.put_log_events(logGroupName=self._group, logStreamName=state.name,
                                              logEvents=[{"timestamp": t, "message": m} for t, m in batch])
        except Exception as e:  # noqa: BLE001 - every failure is retried or reported, never raised
            self._failed(state, batch, e)
            return
        rejected = reply.get("rejectedLogEventsInfo") if isinstance(reply, dict) else None
        if rejected:
            log.warning("CloudWatch rejected some events of %s: %s", state.name, rejected)
        with self._cond:
            state.backoff.reset()
            state.retry_at = 0.0
            if state.dropped:
                log.warning("shipping %s again; %d lines were dropped while CloudWatch was unreachable",
                            state.name, state.dropped)
                state.dropped = 0
                state.warned = False
            if state.finished and not state.events:
                self._streams.pop(state.container_id, None)
            self._cond.notify_all()

    def _failed(self, state: _Stream, batch: list[Event], exc: Exception) -> None:
        code = _error_code(exc)
        with self._cond:
            if code == "InvalidParameterException":  # the batch itself is refused: retrying cannot help
                log.error("CloudWatch refused %d events of %s, dropped: %s", len(batch), state.name, exc)
                if state.finished and not state.events:
                    self._streams.pop(state.container_id, None)
                self._cond.notify_all()
                return
            state.put_back(batch)
            delay = state.backoff.next()
            state.retry_at = time.monotonic() + delay
            if code == "ResourceNotFoundException":  # group or stream deleted under us: recreate it
                state.ready = False
                self._group_ready = False
        log.warning("shipping %d events of %s failed (%s: %s); retrying in %.1f s",
                    len(batch), state.name, code or type(exc).__name__, exc, delay)
