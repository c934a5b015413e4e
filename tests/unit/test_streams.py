"""The local event source mapping (skiff.streams) and schedules (skiff.schedules) keep Lambda's semantics.

Most tests poll an in-process moto table with `run_once()`; moto in-process is not thread safe, so the
tests that run the runner's own thread talk to a moto server subprocess (skiff.motoserver) instead.
A fake DynamoDB Streams client stands in where moto cannot go: several shards, a shard that ends, a
parent and its child, an expired iterator.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from skiff.schedules import Schedule
from skiff.streams import StreamRunner

REPO = Path(__file__).resolve().parents[2]


# --- helpers -------------------------------------------------------------------------------------


def create_table(client: Any, name: str) -> str:
    client.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST",
                        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    return str(client.describe_table(TableName=name)["Table"]["LatestStreamArn"])


class Table:
    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.stream_arn = create_table(client, name)

    def put(self, *keys: str, value: str = "v") -> None:
        for key in keys:
            self.client.put_item(TableName=self.name, Item={"pk": {"S": key}, "value": {"S": value}})

    def delete(self, key: str) -> None:
        self.client.delete_item(TableName=self.name, Key={"pk": {"S": key}})


def keys(n: int, start: int = 0) -> list[str]:
    return [f"k{i:03d}" for i in range(start, start + n)]


def key_of(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["pk"]["S"])


class Recorder:
    """A handler that records each invocation's keys and can be told to fail."""

    def __init__(self, fail: Callable[[list[str], int], bool] | None = None) -> None:
        self.fail = fail
        self.invocations: list[list[str]] = []  # every call, failed or not
        self.batches: list[list[str]] = []  # calls that returned
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        batch = [key_of(r) for r in event["Records"]]
        with self.lock:
            self.invocations.append(batch)
            n = len(self.invocations)
        if self.fail is not None and self.fail(batch, n):
            raise RuntimeError(f"handler refused {batch}")
        with self.lock:
            self.batches.append(batch)
            self.events.append(event)
            self.contexts.append(context)
            self.times.append(time.monotonic())

    @property
    def delivered(self) -> list[str]:
        return [k for b in self.batches for k in b]


def failure_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Table]:
    """A table with a NEW_AND_OLD_IMAGES stream in in-process moto."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from moto import mock_aws

    with mock_aws():
        yield Table(boto3.client("dynamodb"), "things")


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., StreamRunner]:
    """A runner on table `things` with fast defaults; files in tmp_path unless given."""

    def make_runner(handler: Any, **kw: Any) -> StreamRunner:
        kw.setdefault("batching_window_seconds", 0)
        kw.setdefault("retry_backoff_seconds", 0)
        kw.setdefault("failure_destination", tmp_path / "failed.jsonl")
        kw.setdefault("checkpoint_path", tmp_path / "checkpoint.json")
        return StreamRunner(kw.pop("name", "controller"), kw.pop("table_name", "things"), handler, **kw)

    return make_runner


# --- record shape and batching -------------------------------------------------------------------


def test_records_have_the_lambda_dynamodb_shape(table: Table, make: Callable[..., StreamRunner]) -> None:
    table.put("a", value="one")
    table.put("a", value="two")
    table.delete("a")
    rec = Recorder()
    runner = make(rec, name="objects-controller")
    assert runner.run_once() == 3

    records = rec.events[0]["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    for r in records:
        assert r["eventVersion"] == "1.1"
        assert r["eventSource"] == "aws:dynamodb"
        assert r["awsRegion"] == "us-east-1"
        assert r["eventSourceARN"] == table.stream_arn
        assert r["eventID"]
        d = r["dynamodb"]
        assert isinstance(d["ApproximateCreationDateTime"], int | float)
        assert abs(d["ApproximateCreationDateTime"] - time.time()) < 60
        assert d["Keys"] == {"pk": {"S": "a"}}
        assert d["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(d["SequenceNumber"], str) and isinstance(d["SizeBytes"], int)
    insert, modify, remove = (r["dynamodb"] for r in records)
    assert insert["NewImage"] == {"pk": {"S": "a"}, "value": {"S": "one"}} and "OldImage" not in insert
    assert modify["OldImage"]["value"] == {"S": "one"} and modify["NewImage"]["value"] == {"S": "two"}
    assert remove["OldImage"]["value"] == {"S": "two"} and "NewImage" not in remove
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs)
    json.dumps(rec.events[0])  # what Lambda sends is JSON

    context = rec.contexts[0]
    assert context.function_name == "objects-controller"
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 300_000


@pytest.mark.parametrize(("count", "batch_size", "expected_sizes"), [
    (5, 2, [2, 2, 1]),
    (7, 3, [3, 3, 1]),
    (4, 4, [4]),
    (3, 100, [3]),
    (1, 1, [1]),
])
def test_order_is_kept_across_batches_of_at_most_batch_size(table: Table, make: Callable[..., StreamRunner],
                                                           count: int, batch_size: int,
                                                           expected_sizes: list[int]) -> None:
    table.put(*keys(count))
    rec = Recorder()
    runner = make(rec, batch_size=batch_size)
    assert runner.run_once() == count
    assert [len(b) for b in rec.batches] == expected_sizes
    assert rec.delivered == keys(count)
    assert runner.delivered_records == count
    assert runner.run_once() == 0  # nothing twice


@pytest.mark.parametrize(("count", "batch_size", "window", "min_seconds", "max_seconds"), [
    (1, 100, 0.3, 0.3, 2.0),  # batch not full: wait the window for more records
    (2, 2, 5.0, 0.0, 1.5),  # batch full: deliver at once, without waiting out the window
    (1, 100, 0.0, 0.0, 1.0),  # no window: deliver what is there
])
def test_batching_window_is_waited_only_while_the_batch_is_not_full(
        table: Table, make: Callable[..., StreamRunner], count: int, batch_size: int, window: float,
        min_seconds: float, max_seconds: float) -> None:
    table.put(*keys(count))
    rec = Recorder()
    runner = make(rec, batch_size=batch_size, batching_window_seconds=window)
    started = time.monotonic()
    assert runner.run_once() == count
    elapsed = time.monotonic() - started
    assert min_seconds <= elapsed < max_seconds
    assert rec.batches == [keys(count)]


# --- checkpoint, crashes, at-least-once ----------------------------------------------------------


def test_checkpoint_survives_a_restart(table: Table, make: Callable[..., StreamRunner], tmp_path: Path) -> None:
    table.put(*keys(3))
    first = Recorder()
    runner = make(first, batch_size=2)
    assert runner.run_once() == 3
    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert saved["streamArn"] == table.stream_arn
    [(shard_id, state)] = saved["shards"].items()
    assert state["sequence"] == first.events[-1]["Records"][-1]["dynamodb"]["SequenceNumber"]
    assert runner.checkpoint() == {shard_id: state["sequence"]}

    second = Recorder()
    restarted = make(second, batch_size=2)
    assert restarted.run_once() == 0  # nothing old again
    table.put(*keys(2, start=3))
    assert restarted.run_once() == 2
    assert second.delivered == keys(2, start=3)


def test_a_new_stream_ignores_the_old_checkpoint(table: Table, make: Callable[..., StreamRunner]) -> None:
    # `skiff up` restarts moto: the table and its stream are new, moto's shard id and sequence numbers
    # are the same as before, so the checkpoint must be tied to the stream ARN.
    table.put(*keys(3))
    assert make(Recorder()).run_once() == 3
    table.client.delete_table(TableName=table.name)
    time.sleep(0.01)  # the stream label is the creation time
    recreated = Table(table.client, table.name)
    recreated.put(*keys(2, start=10))
    rec = Recorder()
    assert make(rec).run_once() == 2
    assert rec.delivered == keys(2, start=10)


@pytest.mark.parametrize("bisect", [False, True])
def test_a_handler_error_redelivers_the_batch_and_loses_nothing(table: Table, make: Callable[..., StreamRunner],
                                                                 bisect: bool) -> None:
    table.put(*keys(6))
    rec = Recorder(fail=lambda batch, n: n == 2)  # the second invocation crashes once
    runner = make(rec, batch_size=3, bisect_batch_on_error=bisect)
    assert runner.run_once() == 6
    assert rec.invocations[1] == keys(3, start=3)  # the failed batch...
    assert set(keys(3, start=3)) <= set(rec.delivered)  # ...was delivered again
    assert rec.delivered == keys(6)  # in order, each record once after its success
    assert runner.failed_records == 0


class Crash(BaseException):
    """The process dying under the handler: nothing after it runs."""


def test_a_crash_mid_batch_resumes_after_the_last_handled_batch(table: Table,
                                                                make: Callable[..., StreamRunner]) -> None:
    table.put(*keys(6))
    delivered: list[list[str]] = []

    def crashing(event: dict[str, Any], context: Any) -> None:
        batch = [key_of(r) for r in event["Records"]]
        if batch[0] == "k002":
            raise Crash
        delivered.append(batch)

    with pytest.raises(Crash):
        make(crashing, batch_size=2).run_once()
    assert delivered == [["k000", "k001"]]

    rec = Recorder()
    assert make(rec, batch_size=2).run_once() == 4
    assert rec.batches == [["k002", "k003"], ["k004", "k005"]]  # the crashed batch again, none before it


def test_bisect_isolates_a_poison_record(table: Table, make: Callable[..., StreamRunner], tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    table.put(*keys(8))
    poison = "k005"
    rec = Recorder(fail=lambda batch, n: poison in batch)
    runner = make(rec, name="poisoned", batch_size=8, max_retry_attempts=2)
    with caplog.at_level(logging.ERROR, logger="skiff.streams"):
        assert runner.run_once() == 7
    assert rec.delivered == [k for k in keys(8) if k != poison]
    assert runner.failed_records == 1
    assert rec.invocations.count([poison]) == 1 + 2  # alone: first try plus max_retry_attempts

    [line] = failure_lines(tmp_path / "failed.jsonl")
    assert line["runner"] == "poisoned"
    assert "handler refused" in line["error"]
    assert [key_of(r) for r in line["records"]] == [poison]
    assert line["records"][0]["eventSource"] == "aws:dynamodb"
    assert dt.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%SZ")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("1 record(s)" in m and str(tmp_path / "failed.jsonl") in m for m in errors), errors

    # moved on past it: nothing is delivered again, now or after a restart
    assert runner.run_once() == 0
    assert make(Recorder()).run_once() == 0


@pytest.mark.parametrize(("count", "max_retry", "bisect", "invocations"), [
    (3, 0, False, 1),
    (3, 1, False, 2),
    (3, 3, False, 4),
    (1, 2, True, 3),
    # 4 -> 2+2 -> 1+1+1+1; splitting uses no retries, each single record gets 1 + 1 tries: 1 + 2*(1 + 2*2)
    (4, 1, True, 11),
])
def test_max_retry_attempts_is_honoured(table: Table, make: Callable[..., StreamRunner], tmp_path: Path,
                                        count: int, max_retry: int, bisect: bool, invocations: int) -> None:
    table.put(*keys(count))
    rec = Recorder(fail=lambda batch, n: True)
    runner = make(rec, batch_size=count, max_retry_attempts=max_retry, bisect_batch_on_error=bisect)
    assert runner.run_once() == 0
    assert len(rec.invocations) == invocations
    assert runner.failed_records == count
    discarded = [key_of(r) for line in failure_lines(tmp_path / "failed.jsonl") for r in line["records"]]
    assert discarded == keys(count)
    assert make(Recorder()).run_once() == 0  # checkpointed past them


def test_infinite_retries_continue_until_the_handler_succeeds(table: Table,
                                                              make: Callable[..., StreamRunner]) -> None:
    table.put(*keys(2))
    rec = Recorder(fail=lambda batch, n: n <= 5)
    runner = make(rec, batch_size=2, max_retry_attempts=-1, bisect_batch_on_error=False)
    assert runner.run_once() == 2
    assert len(rec.invocations) == 6
    assert runner.failed_records == 0


@pytest.mark.parametrize(("max_age", "delivered", "failed"), [(0.05, 0, 3), (60.0, 3, 0), (None, 3, 0)])
def test_records_older_than_maximum_record_age_are_not_delivered(
        table: Table, make: Callable[..., StreamRunner], tmp_path: Path, max_age: float | None,
        delivered: int, failed: int) -> None:
    table.put(*keys(3))
    time.sleep(0.1)
    rec = Recorder()
    runner = make(rec, maximum_record_age_seconds=max_age)
    assert runner.run_once() == delivered
    assert len(rec.delivered) == delivered
    assert runner.failed_records == failed
    lines = failure_lines(tmp_path / "failed.jsonl")
    assert sum(len(line["records"]) for line in lines) == failed
    assert all("maximum_record_age" in line["error"] for line in lines)


def test_filter_skips_records_but_checkpoints_them(table: Table, make: Callable[..., StreamRunner]) -> None:
    table.put(*keys(4))
    table.delete("k001")
    table.put("k100")

    def no_removes_no_odd(record: dict[str, Any]) -> bool:
        return record["eventName"] != "REMOVE" and int(key_of(record)[1:]) % 2 == 0

    rec = Recorder()
    runner = make(rec, batch_size=2, filter=no_removes_no_odd)
    assert runner.run_once() == 3
    assert rec.delivered == ["k000", "k002", "k100"]
    assert runner.skipped_records == 3
    assert make(Recorder(), filter=no_removes_no_odd).run_once() == 0  # skipped ones are checkpointed too


# --- several shards (fake Streams API) -------------------------------------------------------------


def raw_record(key: str, seq: int) -> dict[str, Any]:
    return {"eventID": f"e{seq}", "eventName": "INSERT", "eventVersion": "1.0", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": dt.datetime.now(dt.UTC), "Keys": {"pk": {"S": key}},
                         "NewImage": {"pk": {"S": key}, "blob": {"B": b"\x00\xff"}},
                         "SequenceNumber": str(seq), "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}}


class FakeStreams:
    """DynamoDB Streams with scripted shards: id -> (parent, records, closed). One shard per page."""

    arn = "arn:aws:dynamodb:eu-west-1:111122223333:table/things/stream/2026-01-01T00:00:00.000"

    def __init__(self, shards: dict[str, tuple[str | None, list[dict[str, Any]], bool]],
                 expire_once: set[str] | None = None) -> None:
        self.shards = shards
        self.expire_once = set(expire_once or ())
        self.iterator_requests: list[tuple[str, str]] = []
        self.meta = SimpleNamespace(region_name="eu-west-1")

    def describe_table(self, TableName: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {"Table": {"TableName": TableName, "LatestStreamArn": self.arn}}

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str | None = None) -> dict[str, Any]:  # noqa: N803
        ids = list(self.shards)
        i = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        parent = self.shards[ids[i]][0]
        shard: dict[str, Any] = {"ShardId": ids[i], "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
        if parent:
            shard["ParentShardId"] = parent
        desc: dict[str, Any] = {"StreamArn": StreamArn, "Shards": [shard]}
        if i + 1 < len(ids):
            desc["LastEvaluatedShardId"] = ids[i]
        return {"StreamDescription": desc}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str,  # noqa: N803
                           SequenceNumber: str | None = None) -> dict[str, Any]:  # noqa: N803
        self.iterator_requests.append((ShardId, ShardIteratorType))
        records = self.shards[ShardId][1]
        pos = 0
        if ShardIteratorType == "AFTER_SEQUENCE_NUMBER":
            pos = next(i + 1 for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == SequenceNumber)
        return {"ShardIterator": f"{ShardId}|{pos}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803
        shard_id, pos_text = ShardIterator.split("|")
        if shard_id in self.expire_once:
            self.expire_once.discard(shard_id)
            raise ClientError({"Error": {"Code": "ExpiredIteratorException", "Message": "expired"}}, "GetRecords")
        _, records, closed = self.shards[shard_id]
        pos = int(pos_text)
        page = records[pos:pos + Limit]
        out: dict[str, Any] = {"Records": page}
        if not (closed and pos + len(page) >= len(records)):
            out["NextShardIterator"] = f"{shard_id}|{pos + len(page)}"
        return out


def test_shards_are_read_parents_first_to_their_end(make: Callable[..., StreamRunner], tmp_path: Path) -> None:
    def fake() -> FakeStreams:
        return FakeStreams({
            "child": ("parent", [raw_record("c1", 10), raw_record("c2", 11)], False),
            "parent": (None, [raw_record("p1", 1), raw_record("p2", 2), raw_record("p3", 3)], True),
            "other": (None, [raw_record("o1", 20)], False),
        }, expire_once={"child"})

    streams = fake()
    rec = Recorder()
    runner = make(rec, batch_size=2, dynamodb_client=streams, streams_client=streams)
    assert runner.run_once() == 6
    delivered = rec.delivered
    assert delivered.index("p3") < delivered.index("c1")  # the child waits for its parent's end
    assert [k for k in delivered if k[0] == "p"] == ["p1", "p2", "p3"]
    assert [k for k in delivered if k[0] == "c"] == ["c1", "c2"]
    assert "o1" in delivered
    record = rec.events[0]["Records"][0]
    assert record["awsRegion"] == "eu-west-1" and record["eventSourceARN"] == FakeStreams.arn
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": "AP8="}  # binary as base64 text, as Lambda sends

    saved = json.loads((tmp_path / "checkpoint.json").read_text())["shards"]
    assert saved["parent"] == {"sequence": "3", "closed": True, "parent": None}
    assert saved["child"]["sequence"] == "11" and not saved["child"]["closed"]

    again = fake()
    again.expire_once.clear()
    restarted = make(Recorder(), batch_size=2, dynamodb_client=again, streams_client=again)
    assert restarted.run_once() == 0
    assert ("parent", "TRIM_HORIZON") not in again.iterator_requests  # an ended shard is not read again
    assert ("parent", "AFTER_SEQUENCE_NUMBER") not in again.iterator_requests
    assert ("child", "AFTER_SEQUENCE_NUMBER") in again.iterator_requests


# --- the runner's thread (moto server subprocess: in-process moto is not thread safe) --------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from skiff.local import wait_http

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "skiff.motoserver", "-H", "127.0.0.1", "-p", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        assert wait_http(f"{endpoint}/moto-api/", 30), "moto server did not start"
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def server_table(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Table:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return Table(boto3.client("dynamodb"), f"things-{uuid.uuid4().hex[:8]}")


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.mark.parametrize(("batch_size", "window", "min_seconds", "max_seconds"), [
    (100, 0.4, 0.4, 3.0),  # the window gathers a record written while it is open
    (2, 5.0, 0.0, 2.0),  # a full batch goes at once
])
def test_running_runner_gathers_records_for_the_window(server_table: Table, make: Callable[..., StreamRunner],
                                                       batch_size: int, window: float, min_seconds: float,
                                                       max_seconds: float) -> None:
    rec = Recorder()
    runner = make(rec, table_name=server_table.name, batch_size=batch_size, batching_window_seconds=window,
                  poll_interval_seconds=0.05)
    runner.start()
    try:
        assert wait_for(lambda: runner.checkpoint() != {})  # polling
        started = time.monotonic()
        server_table.put("k0")
        time.sleep(0.1)
        server_table.put("k1")
        assert wait_for(lambda: len(rec.delivered) == 2)
        assert rec.batches == [["k0", "k1"]]
        assert min_seconds <= rec.times[0] - started < max_seconds
    finally:
        runner.stop()
    assert not runner.running


def test_stop_is_prompt_and_leaves_an_unhandled_batch_for_the_next_start(
        server_table: Table, make: Callable[..., StreamRunner]) -> None:
    failing = Recorder(fail=lambda batch, n: True)
    runner = make(failing, table_name=server_table.name, max_retry_attempts=-1, retry_backoff_seconds=0.05,
                  poll_interval_seconds=0.05)
    runner.start()
    server_table.put("k0")
    assert wait_for(lambda: len(failing.invocations) >= 2)  # retrying forever
    started = time.monotonic()
    runner.stop()
    assert time.monotonic() - started < 1.0
    assert not runner.running
    assert runner.failed_records == 0

    rec = Recorder()
    restarted = make(rec, table_name=server_table.name, poll_interval_seconds=0.05)
    restarted.start()
    try:
        assert wait_for(lambda: rec.delivered == ["k0"])
        server_table.put("k1")
        assert wait_for(lambda: rec.delivered == ["k0", "k1"])
    finally:
        restarted.stop()


# --- schedules -----------------------------------------------------------------------------------


def test_schedule_sends_a_scheduled_event_and_reports_failures(caplog: pytest.LogCaptureFixture) -> None:
    events: list[dict[str, Any]] = []
    contexts: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        events.append(event)
        contexts.append(context)
        if len(events) == 2:
            raise RuntimeError("resync broke")

    schedule = Schedule("resync", handler, every_seconds=60)
    assert schedule.fire_once() is True
    event = events[0]
    assert event["version"] == "0" and event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events" and event["detail"] == {}
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/resync"]
    assert dt.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
    assert event["id"] and event["account"] and event["region"] == "us-east-1"
    assert contexts[0].function_name == "resync" and contexts[0].get_remaining_time_in_millis() > 0

    with caplog.at_level(logging.ERROR, logger="skiff.schedules"):
        assert schedule.fire_once() is False
    assert schedule.failures == 1 and schedule.fired == 2
    assert any("resync broke" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert schedule.fire_once() is True
    assert events[1]["id"] != events[2]["id"]


def test_schedule_ticks_in_its_thread_and_survives_an_exception() -> None:
    calls: list[float] = []

    def flaky(event: dict[str, Any], context: Any) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("first tick fails")

    schedule = Schedule("tick", flaky, every_seconds=0.05)
    started = time.monotonic()
    schedule.start()
    try:
        assert wait_for(lambda: len(calls) >= 3)
    finally:
        schedule.stop()
    assert not schedule.running
    assert calls[0] - started >= 0.04  # first tick after one period
    assert schedule.failures == 1
    count = len(calls)
    time.sleep(0.15)
    assert len(calls) == count  # stopped


# --- Chalice's registered handlers are what Lambda calls ----------------------------------------------


def test_chalice_wrappers_take_events_as_lambda_gives_them(table: Table, make: Callable[..., StreamRunner]) -> None:
    from chalice import Chalice

    app = Chalice(app_name="wrappers")
    seen: list[tuple[Any, ...]] = []
    ticks: list[tuple[Any, ...]] = []

    @app.on_dynamodb_record(stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/things/stream/x")
    def on_change(event: Any) -> None:
        for r in event:
            seen.append((r.event_name, r.keys, r.new_image, r.table_name, r.timestamp, r.context.function_name))

    @app.schedule("rate(1 minute)")
    def resync(event: Any) -> None:
        ticks.append((event.detail_type, event.source, event.resources, event.region, event.context.function_name))

    table.put("a", value="x")
    runner = make(on_change, name="on_change")
    assert runner.run_once() == 1
    [(name, record_keys, new_image, table_name, timestamp, function_name)] = seen
    assert (name, record_keys, table_name, function_name) == ("INSERT", {"pk": {"S": "a"}}, "things", "on_change")
    assert new_image == {"pk": {"S": "a"}, "value": {"S": "x"}}
    assert isinstance(timestamp, dt.datetime)

    assert Schedule("resync", resync, every_seconds=60).fire_once() is True
    assert ticks == [("Scheduled Event", "aws.events", ["arn:aws:events:us-east-1:123456789012:rule/resync"],
                      "us-east-1", "resync")]
