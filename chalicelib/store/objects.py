"""Reading and writing API objects with optimistic concurrency and a gap-free change log.

Every write is one DynamoDB transaction of three items:
  1. the resource type's revision counter, advanced from the value read (condition: unchanged),
  2. the change-log record for the new revision,
  3. the object itself (condition: absent on create, at the resourceVersion the caller read
     on update and delete).
Item 1 serialises all writers of a type, so revisions are dense and commit in order: a watcher that
has seen revision R and reads R+1, R+2, ... misses nothing (invariant 3). A failed condition on
item 3 is the caller's 409; a failed condition on item 1 only means another writer won the race,
so the write is retried with the new counter. Nothing is written unless all three succeed.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import errors, settings
from chalicelib.store.models import COUNTER_REV, ChangeRecord, ObjectRecord

Obj = dict[str, Any]

MAX_BODY_BYTES = 380_000
"""Largest serialised object: a DynamoDB item holds 400 KB, minus room for keys and attributes."""

GENESIS_REV = 1
"""The revision of a type that was never written. Clients read "0" as "any revision" (a watch from
"0" starts with the current state), so no list may return it: the first write is revision 2."""

MAX_WRITE_ATTEMPTS = 60
"""Attempts to win the revision counter before answering 429 (the type is saturated)."""


_RETRYABLE = ("TransactionConflictException", "ProvisionedThroughputExceededException", "ThrottlingException",
              "TransactionInProgressException")


class StoreConflict(Exception):
    """The object's condition failed: it exists (create) or changed (update/delete)."""


class StoreNotFound(Exception):
    """The object does not exist (update/delete of a missing object)."""


class StoreBusy(Exception):
    """The revision counter stayed contended for every attempt."""


class ExtraConditionFailed(Exception):
    """The condition of one of the caller's extra transaction items failed (its index is `args[0]`)."""


ExtraOp = Callable[[TransactWrite], None]
"""Adds one more *update* to a write's transaction (e.g. a node's capacity reservation), so it commits
or fails together with the object."""


@dataclass(frozen=True)
class Change:
    """One change-log record: what a watcher receives."""

    rev: int
    event: str  # ADDED, MODIFIED or DELETED
    key: str
    obj: Obj
    prev: Obj | None = None  # the caller's summary of the previous state, if it gave one


def object_key(namespace: str | None, name: str) -> str:
    return f"{namespace or ''}/{name}"


def dumps(obj: Obj) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False)


def encoded_size_check(body: str) -> None:
    size = len(body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise errors.TooLarge(f"object is too large: {size} bytes serialised, the limit is "
                              f"{MAX_BODY_BYTES} bytes (one DynamoDB item)")


def get(kind: str, key: str) -> Obj | None:
    """The object's current state (strongly consistent), or None."""
    try:
        rec = ObjectRecord.get(kind, key, consistent_read=True)
    except DoesNotExist:
        return None
    return json.loads(rec.body)


def head(kind: str) -> int:
    """The latest committed revision of a resource type (GENESIS_REV before the first write)."""
    try:
        rec = ChangeRecord.get(kind, COUNTER_REV, consistent_read=True)
    except DoesNotExist:
        return GENESIS_REV
    return int(rec.head or GENESIS_REV)


def create(kind: str, key: str, obj: Obj) -> Obj:
    """Store a new object; raises StoreConflict if one with that key exists."""
    return _write(kind, key, obj, event="ADDED", expected_rv=None)


def update(kind: str, key: str, obj: Obj, expected_rv: int, *, prev: Obj | None = None,
           extra: Sequence[ExtraOp] = ()) -> Obj:
    """Replace the object if it is still at `expected_rv`; StoreConflict otherwise.

    `prev` is kept in the change record (a small summary of the state replaced, for watchers);
    `extra` updates commit in the same transaction (ExtraConditionFailed if one's condition fails)."""
    return _write(kind, key, obj, event="MODIFIED", expected_rv=expected_rv, prev=prev, extra=extra)


def delete(kind: str, key: str, last: Obj, expected_rv: int, *, prev: Obj | None = None,
           extra: Sequence[ExtraOp] = ()) -> Obj:
    """Remove the object if it is still at `expected_rv`; returns its final state (new revision)."""
    return _write(kind, key, last, event="DELETED", expected_rv=expected_rv, prev=prev, extra=extra)


_known_head: dict[str, int] = {}
"""The last revision this process saw committed per type: the first attempt of a write guesses it
instead of reading the counter (one request fewer). The transaction's condition checks the guess,
so a wrong one costs a retry, never correctness (invariant 1)."""


def _write(kind: str, key: str, obj: Obj, *, event: str, expected_rv: int | None, prev: Obj | None = None,
           extra: Sequence[ExtraOp] = ()) -> Obj:
    for attempt in range(MAX_WRITE_ATTEMPTS):
        guessed = _known_head.get(kind) if attempt == 0 else None
        current = guessed if guessed is not None else head(kind)
        new_rev = current + 1
        stored = dict(obj)
        stored["metadata"] = dict(obj.get("metadata") or {})
        stored["metadata"]["resourceVersion"] = str(new_rev)
        body = dumps(stored)
        encoded_size_check(body)
        try:
            _transact(kind, key, body, event=event, current=current, new_rev=new_rev, expected_rv=expected_rv,
                      prev=dumps(prev) if prev is not None else None, extra=extra)
            _known_head[kind] = max(new_rev, _known_head.get(kind, 0))
            return stored
        except TransactWriteError as e:
            # PynamoDB sends deletes, then puts, then updates: [object, change, counter, *extra] on
            # delete, [change, object, counter, *extra] otherwise. A failed counter or change-record
            # condition means another writer took this revision: retry (a failed object or extra
            # condition, if any, shows again on the next attempt). Only a failure on the object alone
            # is the caller's 409.
            codes = [r.code if r else None for r in (e.cancellation_reasons or [])]
            obj_i, change_i = (0, 1) if event == "DELETED" else (1, 0)
            whole = len(codes) == 3 + len(extra)
            if whole and "ConditionalCheckFailed" in (codes[change_i], codes[2]) or \
                    "TransactionConflict" in codes or e.cause_response_code in _RETRYABLE:
                _known_head.pop(kind, None)
                if guessed is None:  # a stale guess is retried at once; a lost race backs off
                    time.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
                continue
            if whole and codes[obj_i] == "ConditionalCheckFailed":
                if event != "ADDED" and get(kind, key) is None:
                    raise StoreNotFound(key) from e
                raise StoreConflict(key) from e
            failed_extra = [i for i, code in enumerate(codes[3:]) if code == "ConditionalCheckFailed"]
            if whole and failed_extra:
                raise ExtraConditionFailed(failed_extra[0]) from e
            raise
    raise StoreBusy(kind)


def _transact(kind: str, key: str, body: str, *, event: str, current: int, new_rev: int,
              expected_rv: int | None, prev: str | None, extra: Sequence[ExtraOp]) -> None:
    counter = ChangeRecord(kind, COUNTER_REV)
    counter_condition = (ChangeRecord.head == current) if current > GENESIS_REV else \
        ChangeRecord.head.does_not_exist()
    change = ChangeRecord(kind, new_rev, event=event, key=key, body=body, prev=prev, expires=_expiry())
    # A token per attempt: if the response is lost and botocore re-sends the same request, DynamoDB
    # treats it as the same transaction instead of failing our own condition (a false 409).
    with TransactWrite(connection=ObjectRecord._get_connection().connection,
                       client_request_token=uuid.uuid4().hex) as t:
        t.update(counter, actions=[ChangeRecord.head.set(new_rev)], condition=counter_condition)
        t.save(change, condition=ChangeRecord.rev.does_not_exist())
        if event == "DELETED":
            assert expected_rv is not None
            t.delete(ObjectRecord(kind, key), condition=ObjectRecord.rv == expected_rv)
        else:
            cond = ObjectRecord.key.does_not_exist() if expected_rv is None else ObjectRecord.rv == expected_rv
            t.save(ObjectRecord(kind, key, rv=new_rev, body=body), condition=cond)
        for op in extra:
            op(t)


def _expiry() -> Any:
    from datetime import datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=settings.changelog_retention_seconds())


def scan_objects(kind: str, prefix: str = "", start_after: str | None = None,
                 page_size: int = 500) -> Iterator[tuple[str, int, Obj]]:
    """Yield (key, rv, object) in key order, from a consistent query of the type's partition."""
    cond = ObjectRecord.key.startswith(prefix) if prefix else None
    last_key = {"kind": {"S": kind}, "key": {"S": start_after}} if start_after else None
    for rec in ObjectRecord.query(kind, cond, consistent_read=True, page_size=page_size,
                                  last_evaluated_key=last_key):
        yield rec.key, int(rec.rv), json.loads(rec.body)


def changes_since(kind: str, after: int, limit: int = 1000) -> list[Change]:
    """Change-log records with revision > after, in order (may be fewer than exist; call again)."""
    out: list[Change] = []
    for rec in ChangeRecord.query(kind, ChangeRecord.rev > after, consistent_read=True, limit=limit,
                                  page_size=min(limit, 1000)):
        if rec.event is None:
            continue
        out.append(Change(rev=int(rec.rev), event=rec.event, key=rec.key or "",
                          obj=json.loads(rec.body or "{}"), prev=json.loads(rec.prev) if rec.prev else None))
    return out


def oldest_retained(kind: str) -> int | None:
    """The oldest revision still in the change log, or None when it is empty."""
    for rec in ChangeRecord.query(kind, ChangeRecord.rev > COUNTER_REV, consistent_read=True, limit=1):
        return int(rec.rev)
    return None


def compact(kind: str, up_to: int) -> int:
    """Delete change-log records with revision ≤ up_to (what TTL does on AWS); returns how many."""
    n = 0
    with ChangeRecord.batch_write() as batch:
        for rec in ChangeRecord.query(kind, ChangeRecord.rev.between(COUNTER_REV + 1, up_to),
                                      consistent_read=True):
            batch.delete(rec)
            n += 1
    return n
