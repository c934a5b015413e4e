"""GET pods/<name>/log on in-process moto: what `kubectl logs` shows for lines the node agent shipped.

The lines are written straight into CloudWatch Logs under the agent's contract (group /skiff/<cluster>/containers,
stream <ns>/<pod>/<uid>/<container>/<attempt>), then read back through the API's entry point.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from chalicelib import settings
from chalicelib.api import logs
from chalicelib.api.http import Request, Response
from chalicelib.api.server import handle
from tests.conftest import APIClient

PODS = "/api/v1/namespaces/default/pods"
NOW_MS = int(time.time() * 1000)


@pytest.fixture(autouse=True)
def fresh_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SKIFF_LOG_POLL_SECONDS", "0.01")
    logs.reset()
    yield
    logs.reset()


@pytest.fixture
def cw(cluster: None) -> Any:
    client = boto3.client("logs", region_name="us-east-1")
    client.create_log_group(logGroupName=settings.container_log_group())
    return client


def make_pod(admin: APIClient, name: str = "p", containers: tuple[str, ...] = ("c",),
             inits: tuple[str, ...] = (), status: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if inits:
        spec["initContainers"] = [{"name": c, "image": "busybox"} for c in inits]
    code, pod = admin.post(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    assert code == 201, pod
    if status is not None:
        set_status(admin, name, status)
    return pod


def set_status(admin: APIClient, name: str, status: dict[str, Any]) -> None:
    code, body = admin.patch(f"{PODS}/{name}/status", {"status": status})
    assert code == 200, body


def running(container: str = "c", restarts: int = 0) -> dict[str, Any]:
    return {"phase": "Running", "containerStatuses": [
        {"name": container, "restartCount": restarts, "ready": True, "image": "busybox", "imageID": "",
         "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}


def ship(cw: Any, pod: dict[str, Any], container: str, attempt: int, lines: list[str] | list[tuple[int, str]],
         *, uid: str | None = None) -> None:
    """Write lines the way the node agent does (one event per line); plain strings get times 1 ms apart."""
    md = pod["metadata"]
    stream = logs.STREAM_TEMPLATE.format(namespace=md["namespace"], pod=md["name"], uid=uid or md["uid"],
                                         container=container, attempt=attempt)
    with contextlib.suppress(cw.exceptions.ResourceAlreadyExistsException):
        cw.create_log_stream(logGroupName=settings.container_log_group(), logStreamName=stream)
    events = [{"timestamp": e[0], "message": e[1]} if isinstance(e, tuple)
              else {"timestamp": NOW_MS - 10_000 + i, "message": e} for i, e in enumerate(lines)]
    if events:
        cw.put_log_events(logGroupName=settings.container_log_group(), logStreamName=stream, logEvents=events)


def get_log(client: APIClient, name: str = "p", **query: str) -> Response:
    headers = {"authorization": f"Bearer {client.token}", "accept": "*/*"}
    return handle(Request("GET", f"{PODS}/{name}/log", query={k: [v] for k, v in query.items()}, headers=headers))


def status_of(resp: Response) -> tuple[int, str, str]:
    assert resp.headers["Content-Type"] == "application/json"
    return resp.status, resp.body["reason"], resp.body["message"]


def test_a_single_container_log_is_plain_text_lines(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, status=running())
    ship(cw, pod, "c", 0, ["hello", " ", "world"])  # the agent ships an empty line as " " (CloudWatch needs 1+)
    resp = get_log(admin)
    assert (resp.status, resp.headers["Content-Type"], resp.encoded()) == (200, "text/plain", "hello\n \nworld\n")


def test_a_started_container_without_output_has_an_empty_log(admin: APIClient, cw: Any) -> None:
    make_pod(admin, status=running())
    resp = get_log(admin)
    assert (resp.status, resp.encoded()) == (200, "")


def test_a_recreated_pod_does_not_show_its_predecessors_lines(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin)
    ship(cw, pod, "c", 0, ["old pod"], uid="another-uid")
    assert status_of(get_log(admin)) == (
        400, "BadRequest", 'container "c" in pod "p" is waiting to start: ContainerCreating')


@pytest.mark.parametrize("reason,shown", [("ImagePullBackOff", "trying and failing to pull image"),
                                          ("ErrImagePull", "image can't be pulled"),
                                          ("PodInitializing", "PodInitializing")])
def test_a_waiting_container_says_why(admin: APIClient, cw: Any, reason: str, shown: str) -> None:
    make_pod(admin, status={"phase": "Pending", "containerStatuses": [
        {"name": "c", "restartCount": 0, "ready": False, "image": "busybox", "imageID": "",
         "state": {"waiting": {"reason": reason}}}]})
    assert status_of(get_log(admin)) == (
        400, "BadRequest", f'container "c" in pod "p" is waiting to start: {shown}')


def test_a_pod_with_several_containers_needs_a_name(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, containers=("a", "ab"), inits=("setup",))
    ship(cw, pod, "a", 0, ["from a"])
    ship(cw, pod, "ab", 0, ["from ab"])
    ship(cw, pod, "setup", 0, ["from init"])
    assert status_of(get_log(admin)) == (
        400, "BadRequest", "a container name must be specified for pod p, choose one of: [a ab] "
                           "or one of the init containers: [setup]")
    assert get_log(admin, container="a").encoded() == "from a\n"
    assert get_log(admin, container="ab").encoded() == "from ab\n"
    assert get_log(admin, container="setup").encoded() == "from init\n"
    assert status_of(get_log(admin, container="zz")) == (400, "BadRequest", "container zz is not valid for pod p")


def test_tail_lines(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, status=running())
    ship(cw, pod, "c", 0, [f"line {i}" for i in range(1, 11)])
    assert get_log(admin, tailLines="3").encoded() == "line 8\nline 9\nline 10\n"
    assert get_log(admin, tailLines="0").encoded() == ""
    assert get_log(admin, tailLines="50").encoded().count("\n") == 10
    code, reason, message = status_of(get_log(admin, tailLines="-1"))
    assert (code, reason) == (422, "Invalid")
    assert message == 'PodLogOptions "p" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'
    assert status_of(get_log(admin, tailLines="x"))[:2] == (400, "BadRequest")


def test_tail_lines_reads_back_across_pages(admin: APIClient, cw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_PAGE", 4)
    pod = make_pod(admin, status=running())
    ship(cw, pod, "c", 0, [f"line {i}" for i in range(1, 21)])
    assert get_log(admin, tailLines="10").encoded() == "".join(f"line {i}\n" for i in range(11, 21))


def test_since_seconds_and_since_time(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, status=running())
    now = int(time.time() * 1000)
    ship(cw, pod, "c", 0, [(now - 100_000, "old"), (now - 50_000, "middle"), (now - 5_000, "new")])
    assert get_log(admin, sinceSeconds="10").encoded() == "new\n"
    since = datetime.fromtimestamp((now - 60_000) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert get_log(admin, sinceTime=since).encoded() == "middle\nnew\n"
    assert get_log(admin, sinceTime=since, tailLines="1").encoded() == "new\n"
    code, reason, message = status_of(get_log(admin, sinceTime=since, sinceSeconds="10"))
    assert (code, reason) == (422, "Invalid") and "at most one of `sinceTime` or `sinceSeconds`" in message
    assert status_of(get_log(admin, sinceSeconds="0"))[:2] == (422, "Invalid")
    assert status_of(get_log(admin, sinceTime="yesterday"))[:2] == (400, "BadRequest")


def test_timestamps_prefix_each_line(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, status=running())
    second = NOW_MS // 1000 - 60  # CloudWatch refuses events older than 14 days
    ship(cw, pod, "c", 0, [(second * 1000 + 123, "hello"), (second * 1000 + 1000, "again")])
    at = datetime.fromtimestamp(second, UTC)
    later = datetime.fromtimestamp(second + 1, UTC)
    assert get_log(admin, timestamps="true").encoded() == (
        f"{at:%Y-%m-%dT%H:%M:%S}.123000000Z hello\n{later:%Y-%m-%dT%H:%M:%S}.000000000Z again\n")
    assert logs.format_timestamp(1714564800123) == "2024-05-01T12:00:00.123000000Z"


def test_limit_bytes_cuts_the_output(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, status=running())
    ship(cw, pod, "c", 0, ["hello", "world", "again"])
    assert get_log(admin, limitBytes="8").encoded() == "hello\nwo"
    assert status_of(get_log(admin, limitBytes="0"))[:2] == (422, "Invalid")


def test_previous_reads_the_attempt_before_the_current_one(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, status=running(restarts=1))
    ship(cw, pod, "c", 0, ["first run", "crashed"])
    ship(cw, pod, "c", 1, ["second run"])
    assert get_log(admin).encoded() == "second run\n"
    assert get_log(admin, previous="true").encoded() == "first run\ncrashed\n"


def test_previous_without_a_restart_is_refused(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, status=running())
    ship(cw, pod, "c", 0, ["only run"])
    assert status_of(get_log(admin, previous="true")) == (
        400, "BadRequest", 'previous terminated container "c" in pod "p" not found')


def test_a_crash_looping_container_shows_its_last_run(admin: APIClient, cw: Any) -> None:
    """Waiting to restart (attempt 2 not started): both the log and --previous show attempt 1, as the kubelet
    shows the last terminated container."""
    pod = make_pod(admin, status={"phase": "Running", "containerStatuses": [
        {"name": "c", "restartCount": 2, "ready": False, "image": "busybox", "imageID": "",
         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]})
    ship(cw, pod, "c", 0, ["run 0"])
    ship(cw, pod, "c", 1, ["run 1"])
    assert get_log(admin).encoded() == "run 1\n"
    assert get_log(admin, previous="true").encoded() == "run 1\n"


def test_a_newer_shipped_attempt_wins_over_a_lagging_status(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, status=running(restarts=0))
    ship(cw, pod, "c", 0, ["run 0"])
    ship(cw, pod, "c", 1, ["run 1"])
    assert get_log(admin).encoded() == "run 1\n"
    assert get_log(admin, previous="true").encoded() == "run 0\n"


def between_polls(monkeypatch: pytest.MonkeyPatch, *steps: Callable[[], None]) -> list[float]:
    """Run one step at each pause of the follow loop (single-threaded: in-process moto is not thread safe)."""
    pending = list(steps)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if pending:
            pending.pop(0)()
        else:
            time.sleep(seconds)

    monkeypatch.setattr(logs, "_sleep", pause)
    return pauses


def test_follow_returns_the_new_lines_when_the_container_terminates(
        admin: APIClient, cw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = make_pod(admin, status=running())
    ship(cw, pod, "c", 0, [(NOW_MS, "one")])
    terminated = running()
    terminated["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}

    def last_line_and_exit() -> None:
        ship(cw, pod, "c", 0, [(NOW_MS + 2, "three")])
        set_status(admin, "p", terminated)

    pauses = between_polls(monkeypatch, lambda: ship(cw, pod, "c", 0, [(NOW_MS + 1, "two")]), lambda: None,
                           last_line_and_exit)
    began = time.monotonic()
    resp = get_log(admin, follow="true")
    assert (resp.status, resp.encoded()) == (200, "one\ntwo\nthree\n")
    assert len(pauses) == 3 and time.monotonic() - began < settings.watch_cap_seconds()


def test_follow_of_a_running_container_ends_at_the_watch_cap(
        admin: APIClient, cw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_WATCH_CAP_SECONDS", "0.3")
    monkeypatch.setenv("SKIFF_LOG_POLL_SECONDS", "0.05")
    pod = make_pod(admin, status=running())
    ship(cw, pod, "c", 0, [(NOW_MS, "one")])
    between_polls(monkeypatch, lambda: ship(cw, pod, "c", 0, [(NOW_MS + 1, "two")]))
    began = time.monotonic()
    resp = get_log(admin, follow="true", tailLines="1")
    assert (resp.status, resp.encoded()) == (200, "one\ntwo\n")
    assert 0.25 < time.monotonic() - began < 2


def test_follow_waits_for_a_started_container_s_first_lines(
        admin: APIClient, cw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = make_pod(admin, status=running())
    terminated = running()
    terminated["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    between_polls(monkeypatch, lambda: ship(cw, pod, "c", 0, [(NOW_MS, "first")]),
                  lambda: set_status(admin, "p", terminated))
    assert get_log(admin, follow="true").encoded() == "first\n"


def test_follow_of_a_terminated_container_returns_at_once(admin: APIClient, cw: Any) -> None:
    pod = make_pod(admin, status={"phase": "Succeeded", "containerStatuses": [
        {"name": "c", "restartCount": 0, "ready": False, "image": "busybox", "imageID": "",
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})
    ship(cw, pod, "c", 0, ["done"])
    began = time.monotonic()
    assert get_log(admin, follow="true").encoded() == "done\n"
    assert time.monotonic() - began < 1


def test_missing_pod_is_404_and_nodes_are_403(admin: APIClient, node_client: APIClient, cw: Any) -> None:
    assert status_of(get_log(admin, "nope")) == (404, "NotFound", 'pods "nope" not found')
    make_pod(admin, status=running())
    code, reason, message = status_of(get_log(node_client))
    assert (code, reason) == (403, "Forbidden")
    assert message == ('pods "p" is forbidden: User "system:node:node-a" cannot get resource "pods/log" in API group '
                       '"" in the namespace "default"')
    code, body = admin.post(f"{PODS}/p/log", {})
    assert code == 405 and body["reason"] == "MethodNotAllowed"


def test_the_chalice_app_returns_text_plain(admin: APIClient, cw: Any) -> None:
    """Through app.py and Chalice's test client, as Lambda and `chalice local` answer kubectl."""
    from chalice.test import Client

    import app

    pod = make_pod(admin, status=running())
    ship(cw, pod, "c", 0, ["through chalice", "ünïcode"])
    with Client(app.app) as client:
        resp = client.http.get(f"{PODS}/p/log?tailLines=2",
                               headers={"Authorization": f"Bearer {admin.token}", "Accept": "*/*"})
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/plain"
    assert resp.body.decode("utf-8") == "through chalice\nünïcode\n"
