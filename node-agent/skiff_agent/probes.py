"""Liveness, readiness and startup probes: httpGet, tcpSocket and exec, with Kubernetes' timing.

Why this exists: a probe decides whether a container is restarted (liveness), counts as started
(startup) and receives traffic (readiness, which drives the pod's Ready condition). Each Prober keeps
one probe's schedule and thresholds for one container run; the pod worker asks it what is due and
feeds it the results, so the timing rules live in one place and are tested without Docker.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
Exec = Callable[[list[str], float], tuple[int, str]]  # (command, timeout) -> (exit code, output)


@dataclass
class Outcome:
    ok: bool
    message: str = ""


def _port(value: Any, container: Obj) -> int:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"port {value!r} is not a named port of the container")


def run_probe(probe: Obj, container: Obj, pod_ip: str, exec_fn: Exec) -> Outcome:
    """Run one probe once."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "exec" in probe:
            command = [str(c) for c in (probe["exec"] or {}).get("command") or []]
            code, output = exec_fn(command, timeout)
            if code == 0:
                return Outcome(True)
            return Outcome(False, f"command {command!r} exited with {code}: {output.strip()[:200]}"
                           if code >= 0 else output.strip()[:200])
        if "httpGet" in probe:
            get = probe["httpGet"] or {}
            host = str(get.get("host") or pod_ip or "127.0.0.1")
            port = _port(get.get("port"), container)
            path = str(get.get("path") or "/")
            scheme = str(get.get("scheme") or "HTTP").upper()
            conn: http.client.HTTPConnection
            if scheme == "HTTPS":
                conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                   context=ssl._create_unverified_context())  # noqa: S323 - as kubelet
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
                for h in get.get("httpHeaders") or []:
                    headers[str(h.get("name"))] = str(h.get("value"))
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read(10 * 1024)
            finally:
                conn.close()
            if 200 <= resp.status < 400:
                return Outcome(True)
            return Outcome(False, f"HTTP probe failed with statuscode: {resp.status}")
        if "tcpSocket" in probe:
            sock = probe["tcpSocket"] or {}
            host = str(sock.get("host") or pod_ip or "127.0.0.1")
            with socket.create_connection((host, _port(sock.get("port"), container)), timeout=timeout):
                return Outcome(True)
        if "grpc" in probe:
            return Outcome(False, "grpc probes are not supported by this node")
        return Outcome(False, "the probe names no handler (exec, httpGet or tcpSocket)")
    except (OSError, ValueError, http.client.HTTPException) as e:
        return Outcome(False, f"{_kind(probe)} probe failed: {e}")


def _kind(probe: Obj) -> str:
    for kind in ("httpGet", "tcpSocket", "exec"):
        if kind in probe:
            return {"httpGet": "HTTP", "tcpSocket": "TCP", "exec": "exec"}[kind]
    return "the"


class Prober:
    """One probe of one container run: when it is due, and whether it currently passes."""

    def __init__(self, kind: str, probe: Obj, started_at: float) -> None:
        self.kind = kind  # liveness, readiness, startup
        self.probe = probe
        self.period = float(probe.get("periodSeconds") or 10)
        self.success_threshold = int(probe.get("successThreshold") or 1)
        self.failure_threshold = int(probe.get("failureThreshold") or 3)
        self.next_due = started_at + float(probe.get("initialDelaySeconds") or 0)
        self.successes = 0
        self.failures = 0
        # readiness starts failing, liveness passing, startup not yet passed (as kubelet)
        self.passing = kind == "liveness"
        self.last_message = ""

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def record(self, outcome: Outcome, now: float) -> bool:
        """Note a result; True when the probe's verdict (passing) changed."""
        self.next_due = now + self.period
        before = self.passing
        if outcome.ok:
            self.successes += 1
            self.failures = 0
            if self.successes >= self.success_threshold:
                self.passing = True
        else:
            self.failures += 1
            self.successes = 0
            self.last_message = outcome.message
            if self.failures >= self.failure_threshold:
                self.passing = False
        return before != self.passing


def monotonic() -> float:
    return time.monotonic()
