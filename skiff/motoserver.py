"""moto server for the local runtime, with requests applied one at a time.

moto's DynamoDB is not safe under concurrent requests: a cancelled transaction rolls back by
restoring a copy of the whole table, which can erase another request's committed write. Real
DynamoDB is atomic and our store relies on it (invariants 2, 3, 5), so locally we serve moto's app
behind one lock: connections are still accepted concurrently, but each request runs alone.

The same rollback makes every TransactWriteItems deep-copy the tables it touches, so its cost grows
with the tables (quadratic over a session). With requests serialised, a transaction whose conditions
all hold cannot be rolled back by a condition, so it runs without the backup copy; one with a failing
condition takes moto's own path and gets moto's own cancellation reasons.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

_lock = threading.Lock()


def serialised(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with _lock:
            return list(app(environ, start_response))

    return wrapped


class _NoBackup:
    """Stands in for the `copy` module inside moto's DynamoDB models while no rollback can happen."""

    @staticmethod
    def deepcopy(value: Any) -> Any:
        return value


def _condition_failures(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
    """Each item's condition against the state before the transaction, as DynamoDB evaluates them:
    (code, message, item) per item, (None, None, None) where it holds."""
    from moto.dynamodb.comparisons import get_filter_expression

    results: list[tuple[Any, Any, Any]] = []
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        condition = op.get("ConditionExpression")
        if condition is None:
            results.append((None, None, None))
            continue
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        current = backend.get_item(op["TableName"], key)
        expr = get_filter_expression(condition, op.get("ExpressionAttributeNames"),
                                     op.get("ExpressionAttributeValues"))
        holds = expr.expr(current)
        results.append((None, None, None) if holds else
                       ("ConditionalCheckFailed", "The conditional request failed", None))
    return results


_patched = False


def fast_transactions() -> None:
    """Transactions without moto's whole-table backup copy (requests are serialised): conditions are
    checked first; if one fails, the transaction is cancelled with every item's reason and nothing
    applied; if all hold, moto applies it, with nothing to roll back."""
    global _patched
    if _patched:
        return
    _patched = True
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import TransactionCanceledException

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            return original(self, transact_items)  # moto's own error for that
        failures = _condition_failures(self, transact_items)
        if any(code is not None for code, _, _ in failures):
            raise TransactionCanceledException(failures)
        saved = models.copy
        models.copy = _NoBackup  # type: ignore[assignment]
        try:
            return original(self, transact_items)
        finally:
            models.copy = saved

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server with serialised requests")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5100)
    args = parser.parse_args(argv)
    fast_transactions()
    app = serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()
