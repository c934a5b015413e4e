"""Leases on controller keys: at most one sync of an object at a time, across invocations.

The stream handler and the resync run as separate invocations (and on AWS, a table's stream may have
several shards processed in parallel), so two syncs of one ReplicaSet could each see too few pods and
each create the difference. A sync first takes a lease on its key with a conditional put; a held
lease means someone else is converging that key right now, and the caller retries later (the stream
batch is retried; the next resync comes anyway). A lease expires, so a crashed holder blocks nobody
for long.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.store.models import LockRecord

LEASE_SECONDS = 60.0


class Held(Exception):
    """Another invocation holds the lease on this key."""


@contextlib.contextmanager
def lease(key: str, *, seconds: float = LEASE_SECONDS) -> Iterator[None]:
    holder = uuid.uuid4().hex
    now = time.time()
    try:
        LockRecord(key, holder=holder, expires=now + seconds).save(
            condition=LockRecord.key.does_not_exist() | (LockRecord.expires < now))
    except PutError as e:
        if e.cause_response_code == "ConditionalCheckFailedException":
            raise Held(key) from e
        raise
    try:
        yield
    finally:
        with contextlib.suppress(DeleteError):  # expired and taken over: nothing of ours to release
            LockRecord(key).delete(condition=LockRecord.holder == holder)
