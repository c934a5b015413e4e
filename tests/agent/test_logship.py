"""The log shipper against the real Docker engine and in-process moto CloudWatch Logs.

moto patches botocore and lets the Docker SDK's unix-socket requests through, so containers are real and
CloudWatch is moto. What a user would notice: every line arrives once, in order, across agent restarts and
CloudWatch outages; the bounded buffer keeps the newest lines.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from skiff_agent.logship import LogShipper, _Resume, log_group, parse_line, split_message, stream_name

GROUP = log_group("test")


@pytest.fixture
def cw(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from moto import mock_aws

    with mock_aws():
        import boto3

        yield boto3.client("logs", region_name="us-east-1")


@pytest.fixture
def run(docker_client: Any, busybox_image: str) -> Iterator[Callable[[str], Any]]:
    """Starts `sh -c <script>` in the test image; the containers are removed afterwards."""
    started: list[Any] = []

    def start(script: str) -> Any:
        container = docker_client.containers.run(busybox_image, ["sh", "-c", script], detach=True,
                                                 name=f"logship-test-{uuid.uuid4().hex[:8]}")
        started.append(container)
        return container

    yield start
    for container in started:
        container.remove(force=True)


@pytest.fixture
def shippers(cw: Any, docker_client: Any) -> Iterator[Callable[..., LogShipper]]:
    made: list[LogShipper] = []

    def make(client: Any = None, **kw: Any) -> LogShipper:
        shipper = LogShipper(client or cw, GROUP, docker_client, **kw)
        made.append(shipper)
        return shipper

    yield make
    for shipper in made:
        shipper.close(timeout=5)


def messages(cw: Any, stream: str) -> list[str]:
    out: list[str] = []
    token = None
    while True:
        kw = {"nextToken": token} if token else {}
        try:
            page = cw.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True, **kw)
        except ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":  # not created yet
                return []
            raise
        out += [e["message"] for e in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return out
        token = page["nextForwardToken"]


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def new_stream() -> str:
    return stream_name("default", "web", uuid.uuid4().hex, "app", 0)


class Flaky:
    """A logs client whose put_log_events fails while `failing` is set (counting the failures)."""

    def __init__(self, real: Any, failures: int = 10**9) -> None:
        self.real = real
        self.failures_left = failures
        self.failed = 0
        self.lock = threading.Lock()

    def put_log_events(self, **kw: Any) -> Any:
        with self.lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                self.failed += 1
                raise EndpointConnectionError(endpoint_url="https://logs.us-east-1.amazonaws.com")
        return self.real.put_log_events(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_lines_arrive_once_in_order_with_stderr_and_a_last_line_without_newline(
        cw: Any, run: Callable[[str], Any], shippers: Callable[..., LogShipper]) -> None:
    stream = new_stream()
    container = run("for i in $(seq 1 300); do echo line $i; done; echo; echo oops >&2; sleep 0.2; "
                    "echo -n 'no newline'")
    shipper = shippers()
    shipper.follow(container.id, stream)
    shipper.follow(container.id, stream)  # idempotent
    expected = [f"line {i}" for i in range(1, 301)]
    wait_for(lambda: messages(cw, stream)[-1:] == ["no newline"])
    got = messages(cw, stream)
    assert [m for m in got if m.startswith("line ")] == expected
    # stderr may land between stdout lines (Docker copies the two pipes apart); an empty line ships as a space
    assert sorted(m for m in got if not m.startswith("line ")) == sorted([" ", "oops", "no newline"])
    events = cw.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)["events"]
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps) and abs(stamps[0] / 1000 - time.time()) < 60
    shipper.follow(container.id, stream)  # its output ended: nothing is read or shipped again
    assert shipper.flush(timeout=5)
    assert messages(cw, stream) == got


def test_a_restarted_shipper_resumes_without_duplicates_or_gaps(
        cw: Any, run: Callable[[str], Any], shippers: Callable[..., LogShipper]) -> None:
    stream = new_stream()
    # bursts of identical lines share a millisecond: the resume must tell shipped copies from new ones
    container = run("for i in $(seq 1 40); do echo tick $i; echo same; echo same; sleep 0.03; done")
    first = shippers()
    first.follow(container.id, stream)
    wait_for(lambda: len(messages(cw, stream)) >= 15)
    assert first.close(timeout=5)
    shipped_by_first = len(messages(cw, stream))
    assert shipped_by_first < 120, "the container finished before the restart; the test proves nothing"
    second = shippers()
    second.follow(container.id, stream)
    wait_for(lambda: messages(cw, stream)[-1:] == ["same"] and container.reload() is None
             and container.status == "exited", timeout=15)
    assert second.flush(timeout=5)
    expected: list[str] = []
    for i in range(1, 41):
        expected += [f"tick {i}", "same", "same"]
    assert messages(cw, stream) == expected


def test_lines_wait_while_cloudwatch_is_unreachable(
        cw: Any, run: Callable[[str], Any], shippers: Callable[..., LogShipper]) -> None:
    stream = new_stream()
    flaky = Flaky(cw, failures=2)
    shipper = shippers(flaky)
    container = run("for i in $(seq 1 50); do echo line $i; done")
    shipper.follow(container.id, stream)
    wait_for(lambda: flaky.failed == 2 and len(messages(cw, stream)) == 50, timeout=15)
    assert messages(cw, stream) == [f"line {i}" for i in range(1, 51)]


def test_a_full_buffer_drops_its_oldest_lines(
        cw: Any, run: Callable[[str], Any], shippers: Callable[..., LogShipper],
        caplog: pytest.LogCaptureFixture) -> None:
    stream = new_stream()
    flaky = Flaky(cw)
    shipper = shippers(flaky, max_buffered_events=5)
    container = run("for i in $(seq 1 20); do echo line $i; done")
    shipper.follow(container.id, stream)
    wait_for(lambda: flaky.failed >= 1 and container.reload() is None and container.status == "exited")
    time.sleep(0.3)  # the reader has queued the container's last lines
    flaky.failures_left = 0
    assert shipper.flush(timeout=10)
    assert messages(cw, stream) == [f"line {i}" for i in range(16, 21)]
    assert "dropping its oldest lines" in caplog.text


def test_stop_ends_the_reader_and_ships_what_it_read(
        cw: Any, run: Callable[[str], Any], shippers: Callable[..., LogShipper]) -> None:
    stream = new_stream()
    container = run("echo started; sleep 30")
    shipper = shippers()
    shipper.follow(container.id, stream)
    wait_for(lambda: messages(cw, stream) == ["started"])
    began = time.monotonic()
    shipper.stop(container.id)
    assert time.monotonic() - began < 3
    assert not [t for t in threading.enumerate() if t.name == f"logship-{container.id[:12]}"]


def test_docker_timestamps_parse_to_milliseconds() -> None:
    assert parse_line(b"2024-05-01T12:00:00.123456789Z hello world") == (1714564800123, "hello world")
    assert parse_line(b"2024-05-01T12:00:00Z ") == (1714564800000, "")
    assert parse_line(b"2024-05-01T14:00:00.5+02:00 x") == (1714564800500, "x")
    assert parse_line(b"no timestamp here") is None


def test_long_lines_are_split_on_character_boundaries() -> None:
    line = "é" * 200_000  # 400 000 bytes
    pieces = split_message(line)
    assert "".join(pieces) == line and all(len(p.encode()) <= 256 * 1024 - 26 for p in pieces)


def test_resume_drops_only_what_was_shipped_at_the_last_millisecond() -> None:
    resume = _Resume(1000, Counter({"same": 2, "other": 1}))
    seen = [resume.admit(1000, m) for m in ("same", "other", "same", "same", "new")]
    assert seen == [None, None, None, 1000, 1000]
    assert resume.admit(999, "late") == 1000  # never backwards: CloudWatch reads back in Docker's order
    assert resume.admit(1001, "same") == 1001
