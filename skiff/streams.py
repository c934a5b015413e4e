"""The local stand-in for Lambda's DynamoDB Streams event source mapping.

On AWS, an event source mapping reads the objects table's stream and invokes the controller Lambdas
with batches of records. Locally there is no such thing: moto's own mapping consumes the stream
(and needs Docker), and Chalice has no local runner for `on_dynamodb_record`. So `StreamRunner`
polls the stream itself with the plain DynamoDB Streams API and calls the handler exactly as Lambda
would, `handler({"Records": [...]}, context)`, keeping the mapping's semantics (DESIGN.md,
invariant 9): per-shard order, batches of up to `batch_size` gathered for up to a batching window,
at-least-once delivery with a checkpoint saved only after a batch was handled, retries,
bisect-on-error to isolate a poison record, a maximum record age, filtering, and a failure
destination (a JSON-lines file) for what could not be delivered.

Handlers must be idempotent anyway (invariant 4): a batch is re-delivered after a handler error,
after a crash between the handler's return and the checkpoint write, and after bisecting.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
RecordFilter = Callable[[dict[str, Any]], bool]

_WINDOW_POLL_SECONDS = 0.05
"""Pause between reads of a shard while a batching window is still open."""
_MAX_BACKOFF_SECONDS = 5.0
_DEFAULT_ACCOUNT = "123456789012"  # moto's default account, used in made-up ARNs


class LambdaContext:
    """The parts of Lambda's context object that handlers use."""

    def __init__(self, function_name: str, *, timeout_seconds: float = 300.0, region: str = "us-east-1",
                 account: str = _DEFAULT_ACCOUNT, memory_limit_in_mb: int = 128) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def utc_iso(ts: float | None = None) -> str:
    """UTC time as EventBridge writes it: 2026-11-26T12:00:00Z."""
    moment = dt.datetime.fromtimestamp(time.time() if ts is None else ts, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- records -------------------------------------------------------------------------------------


def _jsonable_attr(value: Any) -> Any:
    """A DynamoDB-JSON attribute value as Lambda sends it: binary as base64 text."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for tag, inner in value.items():
        if tag == "B" and isinstance(inner, bytes | bytearray):
            out[tag] = base64.b64encode(inner).decode("ascii")
        elif tag == "BS":
            out[tag] = [base64.b64encode(b).decode("ascii") if isinstance(b, bytes | bytearray) else b for b in inner]
        elif tag == "M":
            out[tag] = _jsonable_image(inner)
        elif tag == "L":
            out[tag] = [_jsonable_attr(v) for v in inner]
        else:
            out[tag] = inner
    return out


def _jsonable_image(image: dict[str, Any]) -> dict[str, Any]:
    return {name: _jsonable_attr(v) for name, v in image.items()}


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return time.time()


def lambda_record(raw: dict[str, Any], *, stream_arn: str, region: str) -> dict[str, Any]:
    """A record from `get_records` (low-level client) in the shape Lambda hands to a function."""
    src = raw.get("dynamodb", {})
    body: dict[str, Any] = {
        # Lambda sends epoch seconds (rounded down), not a datetime.
        "ApproximateCreationDateTime": int(_epoch(src.get("ApproximateCreationDateTime"))),
        "Keys": _jsonable_image(src.get("Keys", {})),
    }
    for image in ("NewImage", "OldImage"):
        if image in src:
            body[image] = _jsonable_image(src[image])
    body["SequenceNumber"] = src["SequenceNumber"]
    body["SizeBytes"] = src.get("SizeBytes", 0)
    body["StreamViewType"] = src.get("StreamViewType", "NEW_AND_OLD_IMAGES")
    record: dict[str, Any] = {
        "eventID": raw.get("eventID") or uuid.uuid4().hex,
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }
    identity = raw.get("userIdentity")
    if identity:  # TTL deletions
        record["userIdentity"] = {"type": identity.get("Type"), "principalId": identity.get("PrincipalId")}
    return record


@dataclass
class _Item:
    record: dict[str, Any]
    created: float  # precise epoch seconds, for the maximum record age

    @property
    def sequence(self) -> str:
        return str(self.record["dynamodb"]["SequenceNumber"])


# --- shards and the checkpoint -------------------------------------------------------------------


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None = None
    sequence: str | None = None  # last sequence number handled (delivered, skipped or discarded)
    closed: bool = False  # read to its end; its children may start
    iterator: str | None = field(default=None, repr=False)  # in memory only

    def saved(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "closed": self.closed, "parent": self.parent_id}


class _Stopping(Exception):
    """The runner is stopping: leave the current batch undelivered (it will be re-read)."""


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- the runner ----------------------------------------------------------------------------------


class StreamRunner:
    """Feeds one table's stream to one handler with event-source-mapping semantics.

    `run_once()` polls every shard once and delivers what is there; `start()`/`stop()` do that in a
    daemon thread every `poll_interval_seconds`. Counters: `delivered_records`, `skipped_records`
    (filtered out) and `failed_records` (written to the failure destination).

    As on Lambda, `max_retry_attempts=-1` with no `maximum_record_age_seconds` retries a failing record
    until it leaves the stream, holding up its shard. Not emulated: a starting position other than
    TRIM_HORIZON, ReportBatchItemFailures (the handler's return value is ignored), tumbling windows,
    and parallelisation: shards are read one after another in one thread (order is per shard anyway).
    Note that moto keeps every shard iterator it hands out, so each poll costs the moto server a
    little memory; a longer `poll_interval_seconds` keeps that down for long-lived local clusters.
    """

    def __init__(self, name: str, table_name: str, handler: Handler, *, batch_size: int = 100,
                 batching_window_seconds: float = 0.5, max_retry_attempts: int = 3,
                 bisect_batch_on_error: bool = True, maximum_record_age_seconds: float | None = None,
                 failure_destination: Path, checkpoint_path: Path, filter: RecordFilter | None = None,
                 poll_interval_seconds: float = 0.2, retry_backoff_seconds: float = 0.1,
                 function_timeout_seconds: float = 300.0, shard_refresh_seconds: float = 10.0,
                 dynamodb_client: Any = None, streams_client: Any = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_retry_attempts < -1:
            raise ValueError("max_retry_attempts must be -1 (retry until the record expires) or more")
        self.name = name
        self.table_name = table_name
        self.handler = handler
        self.batch_size = batch_size
        self.batching_window_seconds = max(0.0, batching_window_seconds)
        self.max_retry_attempts = max_retry_attempts
        self.bisect_batch_on_error = bisect_batch_on_error
        self.maximum_record_age_seconds = maximum_record_age_seconds
        self.failure_destination = Path(failure_destination)
        self.checkpoint_path = Path(checkpoint_path)
        self.filter = filter
        self.poll_interval_seconds = poll_interval_seconds
        self.retry_backoff_seconds = retry_backoff_seconds
        self.function_timeout_seconds = function_timeout_seconds
        self.shard_refresh_seconds = shard_refresh_seconds
        self.delivered_records = 0
        self.skipped_records = 0
        self.failed_records = 0
        self._dynamodb = dynamodb_client
        self._streams = streams_client
        self._stream_arn: str | None = None
        self._shards: dict[str, _Shard] = {}  # in the order the stream lists them
        self._refreshed_at: float | None = None
        self._shard_ended = False  # a shard ended since the last listing: look for its children now
        self._loaded = False
        self._lock = threading.RLock()  # one poll at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # clients (created lazily: botocore reads AWS_ENDPOINT_URL when a client is made)

    def _ddb(self) -> Any:
        if self._dynamodb is None:
            import boto3

            self._dynamodb = boto3.client("dynamodb")
        return self._dynamodb

    def _streams_api(self) -> Any:
        if self._streams is None:
            import boto3
            from botocore.config import Config

            # Account-based endpoints (<account>.streams-ddb...) are optional on AWS and unknown to moto.
            self._streams = boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
        return self._streams

    @property
    def region(self) -> str:
        region = getattr(getattr(self._streams_api(), "meta", None), "region_name", None)
        return str(region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")

    # thread

    def start(self) -> None:
        """Poll in a daemon thread until `stop()`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"skiff-stream-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling. A batch not yet handled is left for the next start (at-least-once); a handler
        already running is waited for up to `timeout` seconds."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("stream runner %s: handler still running after %.1fs; leaving its thread", self.name,
                            timeout)
                return
        self._thread = None
        self._stop.clear()  # run_once() works again after a stop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        errors = 0
        while not self._stop.is_set():
            try:
                self.run_once()
                errors = 0
                delay = self.poll_interval_seconds
            except Exception:
                errors += 1
                delay = min(_MAX_BACKOFF_SECONDS, self.poll_interval_seconds * 2 ** min(errors, 10))
                if errors == 1 or errors % 50 == 0:
                    log.exception("stream runner %s: polling %s failed (%d in a row); retrying", self.name,
                                  self.table_name, errors)
                # Iterators may be stale (expired, or the table was re-created): re-resolve everything.
                self._refreshed_at = None
                for shard in self._shards.values():
                    shard.iterator = None
            self._stop.wait(delay)

    # polling

    def run_once(self) -> int:
        """Poll every shard once and deliver what is there; returns the number of records delivered."""
        with self._lock:
            self._refresh_shards()
            delivered = 0
            visited: set[str] = set()
            progress = True
            while progress and not self._stop.is_set():
                progress = False  # another pass when a parent shard ended, so its children start now
                for shard in list(self._shards.values()):
                    if shard.closed or shard.shard_id in visited or not self._ready(shard):
                        continue
                    visited.add(shard.shard_id)
                    delivered += self._drain(shard)
                    progress = progress or shard.closed
            return delivered

    def _ready(self, shard: _Shard) -> bool:
        """A child shard starts only once its parent was read to its end (per-item order)."""
        parent = self._shards.get(shard.parent_id) if shard.parent_id else None
        return parent is None or parent.closed

    def _refresh_shards(self) -> None:
        now = time.monotonic()
        stale = self._refreshed_at is None or now - self._refreshed_at >= self.shard_refresh_seconds
        if not stale and not self._shard_ended:
            return
        if not self._loaded:
            self._load_checkpoint()
        table = self._ddb().describe_table(TableName=self.table_name)["Table"]
        arn = table.get("LatestStreamArn")
        if not arn:
            raise RuntimeError(f"table {self.table_name} has no stream; the runner {self.name} needs one "
                               f"(StreamSpecification NEW_AND_OLD_IMAGES)")
        if arn != self._stream_arn:
            if self._stream_arn is not None:
                log.warning("stream runner %s: %s has a new stream %s (was %s); starting from its beginning",
                            self.name, self.table_name, arn, self._stream_arn)
            self._stream_arn = arn
            self._shards = {}
        listed: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": arn}
        while True:
            desc = self._streams_api().describe_stream(**kwargs)["StreamDescription"]
            listed.extend(desc.get("Shards", []))
            last = desc.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        shards: dict[str, _Shard] = {}
        for item in listed:
            sid = item["ShardId"]
            known = self._shards.get(sid) or _Shard(sid)
            known.parent_id = item.get("ParentShardId")
            shards[sid] = known
        # Shards no longer listed were trimmed (24 h retention); their checkpoints go with them, and a
        # child whose parent is gone may start.
        self._shards = shards
        self._refreshed_at = now
        self._shard_ended = False
        self._save_checkpoint()

    def _drain(self, shard: _Shard) -> int:
        delivered = 0
        while not self._stop.is_set() and not shard.closed:
            items, last_seq, ended = self._gather(shard)
            if self._stop.is_set():
                shard.iterator = None  # re-read from the checkpoint next time
                break
            if items:
                try:
                    delivered += self._deliver(shard, items, 0)
                except _Stopping:
                    shard.iterator = None
                    break
            if last_seq is not None:
                shard.sequence = last_seq
            if ended:
                shard.closed = True
                self._shard_ended = True
                log.info("stream runner %s: shard %s ended", self.name, shard.shard_id)
            if last_seq is not None or ended:
                self._save_checkpoint()
            if not items and last_seq is None and not ended:
                break  # nothing more there now
        return delivered

    def _iterator(self, shard: _Shard) -> str:
        if shard.iterator:
            return shard.iterator
        api = self._streams_api()
        base = {"StreamArn": self._stream_arn, "ShardId": shard.shard_id}
        if shard.sequence is None:
            resp = api.get_shard_iterator(**base, ShardIteratorType="TRIM_HORIZON")
        else:
            try:
                resp = api.get_shard_iterator(**base, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                              SequenceNumber=shard.sequence)
            except Exception as exc:
                if _error_code(exc) != "TrimmedDataAccessException":
                    raise
                log.error("stream runner %s: records after %s on shard %s were trimmed from the stream before "
                          "they were handled; they are LOST to this handler (a resync must repair them). "
                          "Continuing from the oldest record kept.", self.name, shard.sequence, shard.shard_id)
                resp = api.get_shard_iterator(**base, ShardIteratorType="TRIM_HORIZON")
        shard.iterator = str(resp["ShardIterator"])
        return shard.iterator

    def _gather(self, shard: _Shard) -> tuple[list[_Item], str | None, bool]:
        """Read up to batch_size matching records, waiting up to the batching window (counted from the
        first one) for more. Returns (records, last sequence number read, whether the shard ended)."""
        items: list[_Item] = []
        last_seq: str | None = None
        deadline: float | None = None
        ended = False
        region = self.region
        arn = self._stream_arn or ""
        renewed = False
        while len(items) < self.batch_size and not self._stop.is_set():
            try:
                resp = self._streams_api().get_records(ShardIterator=self._iterator(shard),
                                                       Limit=self.batch_size - len(items))
            except Exception as exc:
                if renewed or _error_code(exc) not in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                    raise
                # Re-read from the checkpoint; deliver first what was gathered so none is read twice.
                shard.iterator = None
                if items or last_seq is not None:
                    break
                renewed = True
                continue
            shard.iterator = resp.get("NextShardIterator")
            raws = resp.get("Records", [])
            for raw in raws:
                item = _Item(lambda_record(raw, stream_arn=arn, region=region),
                             _epoch(raw.get("dynamodb", {}).get("ApproximateCreationDateTime")))
                last_seq = item.sequence
                if self._matches(item.record):
                    items.append(item)
                    if deadline is None:
                        deadline = time.monotonic() + self.batching_window_seconds
                else:
                    self.skipped_records += 1
            if shard.iterator is None:
                ended = True  # a closed shard, read to its end
                break
            if raws and not items:
                continue  # everything so far was filtered out; keep reading
            if not raws and not items:
                break  # nothing there
            remaining = (deadline or 0.0) - time.monotonic()
            if remaining <= 0:
                break
            if not raws:
                self._stop.wait(min(_WINDOW_POLL_SECONDS, remaining))
        return items, last_seq, ended

    def _matches(self, record: dict[str, Any]) -> bool:
        if self.filter is None:
            return True
        try:
            return bool(self.filter(record))
        except Exception:
            log.exception("stream runner %s: filter raised on %s; delivering the record", self.name,
                          record.get("eventID"))
            return True

    # delivery

    def _deliver(self, shard: _Shard, items: list[_Item], retries: int) -> int:
        """Deliver a batch, retrying and bisecting on handler errors; returns how many were delivered.
        Records that cannot be delivered go to the failure destination. Splitting a batch does not use
        up retries (as on Lambda); only a batch that cannot be split any more is retried."""
        while True:
            if self._stop.is_set():
                raise _Stopping
            items = self._drop_expired(shard, items)
            if not items:
                return 0
            try:
                self._invoke(items)
            except Exception as exc:
                error = exc
            else:
                self.delivered_records += len(items)
                return len(items)
            log.warning("stream runner %s: handler failed on %d record(s) of shard %s (retry %d): %s: %s",
                        self.name, len(items), shard.shard_id, retries, type(error).__name__, error)
            if self.bisect_batch_on_error and len(items) > 1:
                half = (len(items) + 1) // 2
                return self._deliver(shard, items[:half], retries) + self._deliver(shard, items[half:], retries)
            if 0 <= self.max_retry_attempts <= retries:
                self._discard(shard, items, f"{type(error).__name__}: {error}",
                              f"after {retries} retr{'y' if retries == 1 else 'ies'}")
                return 0
            retries += 1
            if self.retry_backoff_seconds > 0:
                backoff = min(_MAX_BACKOFF_SECONDS, self.retry_backoff_seconds * 2 ** min(retries - 1, 10))
                if self._stop.wait(backoff):
                    raise _Stopping

    def _invoke(self, items: list[_Item]) -> None:
        event = {"Records": [copy.deepcopy(i.record) for i in items]}
        context = LambdaContext(self.name, timeout_seconds=self.function_timeout_seconds, region=self.region)
        self.handler(event, context)

    def _drop_expired(self, shard: _Shard, items: list[_Item]) -> list[_Item]:
        if self.maximum_record_age_seconds is None or self.maximum_record_age_seconds < 0:
            return items
        oldest_allowed = time.time() - self.maximum_record_age_seconds
        expired = [i for i in items if i.created < oldest_allowed]
        if expired:
            self._discard(shard, expired, f"record older than maximum_record_age_seconds "
                                          f"({self.maximum_record_age_seconds:g}s)", "unhandled")
        return [i for i in items if i.created >= oldest_allowed]

    def _discard(self, shard: _Shard, items: list[_Item], error: str, how: str) -> None:
        """Write records to the failure destination and say so loudly."""
        entry = {"runner": self.name, "error": error, "records": [i.record for i in items], "time": utc_iso(),
                 "table": self.table_name, "streamArn": self._stream_arn, "shardId": shard.shard_id,
                 "firstSequenceNumber": items[0].sequence, "lastSequenceNumber": items[-1].sequence}
        self.failure_destination.parent.mkdir(parents=True, exist_ok=True)
        with open(self.failure_destination, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.failed_records += len(items)
        log.error("stream runner %s: %d record(s) of %s NOT DELIVERED (%s: %s); written to %s and skipped",
                  self.name, len(items), self.table_name, how, error, self.failure_destination)

    # checkpoint

    def _load_checkpoint(self) -> None:
        self._loaded = True
        try:
            saved = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.error("stream runner %s: checkpoint %s is unreadable (%s); starting from the stream's beginning",
                      self.name, self.checkpoint_path, exc)
            return
        self._stream_arn = saved.get("streamArn")
        for sid, state in (saved.get("shards") or {}).items():
            self._shards[sid] = _Shard(sid, parent_id=state.get("parent"), sequence=state.get("sequence"),
                                       closed=bool(state.get("closed")))

    def _save_checkpoint(self) -> None:
        state = {"runner": self.name, "table": self.table_name, "streamArn": self._stream_arn,
                 "shards": {sid: s.saved() for sid, s in self._shards.items()}}
        _write_atomically(self.checkpoint_path, json.dumps(state, indent=1) + "\n")

    def checkpoint(self) -> dict[str, str | None]:
        """The last handled sequence number per shard (what the checkpoint file holds)."""
        with self._lock:
            return {sid: s.sequence for sid, s in self._shards.items()}
