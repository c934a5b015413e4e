"""Consistent lists: a page of objects exactly as they were at one revision.

A DynamoDB query is not a snapshot: writers commit while it pages. We read the type's revision
counter before (c1) and after (c2) the query, then replay the change log (c1, c2] over the keys the
query covered. Each key then holds its state at c2: a key the log does not touch was unchanged since
c1, so the query read its c2 state; a key it touches gets its last change up to c2. The list's
resourceVersion is c2, and a watch from c2 delivers every later change, none doubled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.store import objects

Obj = dict[str, Any]


@dataclass
class Page:
    items: list[Obj]
    revision: int
    next_key: str | None  # the last key covered when more may follow, else None


def list_page(kind: str, *, prefix: str = "", start_after: str | None = None, limit: int | None = None,
              match: Callable[[Obj], bool] = lambda o: True) -> Page:
    """Objects of `kind` whose key starts with `prefix`, after `start_after`, filtered by `match`."""
    c1 = objects.head(kind)
    window: dict[str, Obj] = {}
    matched = 0
    last_key: str | None = None
    more = False
    for key, _rv, obj in objects.scan_objects(kind, prefix, start_after):
        if limit is not None and matched >= limit:
            more = True  # one record beyond the page exists
            break
        window[key] = obj
        last_key = key
        if match(obj):
            matched += 1
    c2 = objects.head(kind)
    if c2 > c1:
        _replay(kind, window, c1, c2, prefix=prefix, start_after=start_after,
                end_key=last_key if more else None)
    items = [window[k] for k in sorted(window) if match(window[k])]
    return Page(items=items, revision=c2, next_key=last_key if more else None)


def _replay(kind: str, window: dict[str, Obj], c1: int, c2: int, *, prefix: str, start_after: str | None,
            end_key: str | None) -> None:
    after = c1
    while after < c2:
        batch = objects.changes_since(kind, after, limit=min(1000, c2 - after))
        if not batch:
            break
        for change in batch:
            if change.rev > c2:
                return
            after = change.rev
            k = change.key
            if not k.startswith(prefix) or (start_after is not None and k <= start_after):
                continue
            if end_key is not None and k > end_key:
                continue
            if change.event == "DELETED":
                window.pop(k, None)
            else:
                window[k] = change.obj
