"""The local stand-in for EventBridge schedules (`@app.schedule` handlers).

On AWS an EventBridge rule invokes the resync Lambda every N minutes (invariant 4: the periodic
resync repairs what a lost stream record left behind and advances time-based work). Locally,
`Schedule` calls the same handler with an EventBridge-shaped "Scheduled Event" every
`every_seconds` in a daemon thread. A failing tick is logged loudly and the next tick runs anyway,
as the next EventBridge invocation would.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from skiff.streams import LambdaContext, utc_iso

log = logging.getLogger(__name__)

_DEFAULT_ACCOUNT = "123456789012"


def scheduled_event(rule: str, *, region: str, account: str = _DEFAULT_ACCOUNT) -> dict[str, Any]:
    """The event EventBridge sends to a function a schedule rule targets."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": utc_iso(),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule}"],
        "detail": {},
    }


class Schedule:
    """Calls `handler(event, context)` every `every_seconds` until `stop()`.

    Ticks keep a fixed rate; a tick that would start while the previous one still runs is skipped
    (not queued). Counters: `fired` (invocations) and `failures` (invocations that raised).
    """

    def __init__(self, name: str, handler: Callable[[dict[str, Any], Any], Any], every_seconds: float, *,
                 run_at_start: bool = False, function_timeout_seconds: float = 300.0,
                 region: str | None = None, account: str = _DEFAULT_ACCOUNT) -> None:
        if every_seconds <= 0:
            raise ValueError("every_seconds must be positive")
        self.name = name
        self.handler = handler
        self.every_seconds = every_seconds
        self.run_at_start = run_at_start
        self.function_timeout_seconds = function_timeout_seconds
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.account = account
        self.fired = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fire_once(self) -> bool:
        """Invoke the handler once; True when it returned, False when it raised (logged loudly)."""
        self.fired += 1
        event = scheduled_event(self.name, region=self.region, account=self.account)
        context = LambdaContext(self.name, timeout_seconds=self.function_timeout_seconds, region=self.region,
                                account=self.account)
        try:
            self.handler(event, context)
        except Exception:
            self.failures += 1
            log.exception("schedule %s: handler FAILED (%d of %d ticks so far); the next tick runs in %gs",
                          self.name, self.failures, self.fired, self.every_seconds)
            return False
        return True

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"skiff-schedule-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("schedule %s: handler still running after %.1fs; leaving its thread", self.name, timeout)
                return
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        start = time.monotonic()
        tick = 0 if self.run_at_start else 1
        while True:
            due = start + tick * self.every_seconds
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            self.fire_once()
            # The next tick due after now (skipping any missed while the handler ran).
            tick = max(tick + 1, int((time.monotonic() - start) // self.every_seconds) + 1)
