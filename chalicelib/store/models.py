"""PynamoDB models: the tables that hold all cluster state.

- objects: one item per API object (partition = resource type, sort = "<namespace>/<name>");
  its stream (new and old images) feeds the controllers.
- changes: the change log that watches read, one item per revision of a resource type, plus the
  type's revision counter at rev 0. A write advances the counter, appends its change and writes the
  object in one transaction, so revisions are dense and in commit order (invariant 3).
- tokens: bearer tokens, stored as SHA-256 hashes.
- allocations: per node, the capacity its bound pods reserve (committed with each binding).
- locks: short leases that keep two controller invocations from syncing the same key at once.

Table names come from SKIFF_TABLE_PREFIX, read when this module is imported (no AWS call).
Every client honours AWS_ENDPOINT_URL through botocore, so moto, LocalStack and AWS all work.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.models import Model

from chalicelib import settings

COUNTER_REV = 0
"""Sort key of the revision counter item in the changes table; real revisions start at 1."""


class ObjectRecord(Model):
    """The current state of one API object."""

    class Meta:
        table_name = f"{settings.table_prefix()}-objects"
        region = settings.region()
        billing_mode = "PAY_PER_REQUEST"
        stream_view_type = "NEW_AND_OLD_IMAGES"

    kind = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    rv = NumberAttribute()
    body = UnicodeAttribute()


class ChangeRecord(Model):
    """One revision of a resource type (or, at rev 0, the type's counter in `head`)."""

    class Meta:
        table_name = f"{settings.table_prefix()}-changes"
        region = settings.region()
        billing_mode = "PAY_PER_REQUEST"

    kind = UnicodeAttribute(hash_key=True)
    rev = NumberAttribute(range_key=True)
    head = NumberAttribute(null=True)
    event = UnicodeAttribute(null=True)
    key = UnicodeAttribute(null=True)
    body = UnicodeAttribute(null=True)
    prev = UnicodeAttribute(null=True)
    expires = TTLAttribute(null=True)


class TokenRecord(Model):
    """A bearer token's hash and what it may do."""

    class Meta:
        table_name = f"{settings.table_prefix()}-tokens"
        region = settings.region()
        billing_mode = "PAY_PER_REQUEST"

    token_hash = UnicodeAttribute(hash_key=True)
    role = UnicodeAttribute()
    node = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)
    created = UnicodeAttribute()


class LockRecord(Model):
    """A short lease on a controller key, so no two invocations sync the same object at once."""

    class Meta:
        table_name = f"{settings.table_prefix()}-locks"
        region = settings.region()
        billing_mode = "PAY_PER_REQUEST"

    key = UnicodeAttribute(hash_key=True)
    holder = UnicodeAttribute()
    expires = NumberAttribute()


class AllocationRecord(Model):
    """What the pods bound to a node reserve of it (see chalicelib.scheduler.reservations)."""

    class Meta:
        table_name = f"{settings.table_prefix()}-allocations"
        region = settings.region()
        billing_mode = "PAY_PER_REQUEST"

    node = UnicodeAttribute(hash_key=True)
    cpu_m = NumberAttribute(null=True)
    memory = NumberAttribute(null=True)
    pods = NumberAttribute(null=True)
    uids = UnicodeSetAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (ObjectRecord, ChangeRecord, TokenRecord, LockRecord, AllocationRecord)


def ensure_tables() -> None:
    """Create any missing table (local runtime and tests; on AWS the Pulumi program owns them)."""
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True)
    _enable_ttl()


def _enable_ttl() -> None:
    client = ChangeRecord._get_connection().connection.client
    try:
        client.update_time_to_live(
            TableName=ChangeRecord.Meta.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
        )
    except client.exceptions.ClientError as e:  # already enabled
        if "TimeToLive is already enabled" not in str(e):
            raise
