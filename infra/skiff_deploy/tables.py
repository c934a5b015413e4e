"""The DynamoDB tables, derived from the PynamoDB models so the deployment cannot drift from the code.

Keys, attribute definitions, indexes, the stream view type and the TTL attribute all come from
chalicelib.store.models; only the name prefix comes from the stack. Every table is on-demand with
point-in-time recovery; a table whose model declares a stream gets one; a model with a TTLAttribute
(the change log's `expires`) gets TTL on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class TableSpec:
    suffix: str  # "objects", "changes", ...
    hash_key: str
    range_key: str | None
    attributes: list[dict[str, str]]
    stream_view_type: str | None
    ttl_attribute: str | None
    global_indexes: list[dict[str, Any]] = field(default_factory=list)
    local_indexes: list[dict[str, Any]] = field(default_factory=list)


def _projection(index: dict[str, Any]) -> dict[str, Any]:
    projection = index.get("projection") or {}
    out: dict[str, Any] = {"projection_type": projection.get("ProjectionType", "ALL")}
    if projection.get("NonKeyAttributes"):
        out["non_key_attributes"] = list(projection["NonKeyAttributes"])
    return out


def _index_keys(index: dict[str, Any]) -> dict[str, Any]:
    keys = {k["KeyType"]: k["AttributeName"] for k in index.get("key_schema") or []}
    out: dict[str, Any] = {"name": index["index_name"], "hash_key": keys["HASH"], **_projection(index)}
    if "RANGE" in keys:
        out["range_key"] = keys["RANGE"]
    return out


def specs() -> list[TableSpec]:
    """One spec per PynamoDB model in chalicelib.store.models.ALL_MODELS."""
    from pynamodb.attributes import TTLAttribute

    from chalicelib.store.models import ALL_MODELS

    out = []
    for model in ALL_MODELS:
        schema = model._get_schema()
        keys = {k["KeyType"]: k["AttributeName"] for k in schema["key_schema"]}
        # "<SKIFF_TABLE_PREFIX>-<suffix>": whatever prefix the models were imported with, the suffix is
        # the last part (the stack chooses its own prefix).
        suffix = model.Meta.table_name.rsplit("-", 1)[1]
        ttl = [n for n, a in model.get_attributes().items() if isinstance(a, TTLAttribute)]
        out.append(TableSpec(
            suffix=suffix, hash_key=keys["HASH"], range_key=keys.get("RANGE"),
            attributes=sorted(({"name": a["AttributeName"], "type": a["AttributeType"]}
                               for a in schema["attribute_definitions"]), key=lambda a: a["name"]),
            stream_view_type=getattr(model.Meta, "stream_view_type", None),
            ttl_attribute=ttl[0] if ttl else None,
            global_indexes=[_index_keys(dict(i)) for i in schema.get("global_secondary_indexes") or []],
            local_indexes=[_index_keys(dict(i)) for i in schema.get("local_secondary_indexes") or []],
        ))
    return out


def create(prefix: str, tags: dict[str, str]) -> dict[str, aws.dynamodb.Table]:
    """The tables, keyed by suffix ("objects", "changes", "tokens", "locks", "allocations")."""
    tables = {}
    for spec in specs():
        args: dict[str, Any] = {
            "name": f"{prefix}-{spec.suffix}",
            "billing_mode": "PAY_PER_REQUEST",
            "hash_key": spec.hash_key,
            "attributes": spec.attributes,
            "point_in_time_recovery": {"enabled": True},
            "server_side_encryption": {"enabled": True},
            "deletion_protection_enabled": False,  # `pulumi destroy` removes the cluster, as documented
            "tags": tags,
        }
        if spec.range_key:
            args["range_key"] = spec.range_key
        if spec.stream_view_type:
            args["stream_enabled"] = True
            args["stream_view_type"] = spec.stream_view_type
        if spec.ttl_attribute:
            args["ttl"] = {"attribute_name": spec.ttl_attribute, "enabled": True}
        if spec.global_indexes:
            args["global_secondary_indexes"] = spec.global_indexes
        if spec.local_indexes:
            args["local_secondary_indexes"] = spec.local_indexes
        tables[spec.suffix] = aws.dynamodb.Table(f"table-{spec.suffix}", **args)
    pulumi.log.debug(f"tables: {sorted(tables)}")
    return tables
