"""list and watch: reading collections, with selectors, pagination and gap-free watch.

A list is a consistent snapshot at the revision it returns (chalicelib.store.snapshot). A watch is a
bounded long-poll over the change log: it returns the events after the client's resourceVersion
as newline-delimited JSON as soon as there are some, or when its time runs out (API Gateway ends a
request after 29 s and Chalice cannot stream), and the client watches again from the last
resourceVersion it saw. Revisions are dense, so a hole in what the log returns proves that history
expired: the watcher then gets 410 Gone as an ERROR event and re-lists.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from chalicelib import errors, settings
from chalicelib.api import tables
from chalicelib.api.auth import Identity, authorize
from chalicelib.api.http import Request, Response, ok
from chalicelib.api.paths import Target
from chalicelib.api.selectors import parse_field_selector, parse_label_selector
from chalicelib.store import objects as store
from chalicelib.store.snapshot import list_page
from chalicelib.types.registry import ResourceInfo

Obj = dict[str, Any]


class _Matcher:
    """The request's label and field selectors, on objects and on the change log's summaries."""

    def __init__(self, req: Request, target: Target) -> None:
        self.labels = parse_label_selector(req.arg("labelSelector") or "")
        self.fields = parse_field_selector(req.arg("fieldSelector") or "", target.resource.kind)

    @property
    def is_empty(self) -> bool:
        return self.labels.is_empty and self.fields.is_empty

    def __call__(self, obj: Obj) -> bool:
        return self.labels.matches((obj.get("metadata") or {}).get("labels")) and self.fields.matches(obj)

    def summary(self, prev: Obj) -> bool:
        return self.labels.matches(prev.get("labels")) and self.fields.matches_summary(prev)


def _event_type(change: store.Change, match: _Matcher) -> str | None:
    """The watch event for a change, as a selector sees it: an object that stops matching is DELETED
    for this watcher and one that starts matching is ADDED; None when it matches neither before nor after."""
    now = match(change.obj)
    if change.event != "MODIFIED" or change.prev is None or match.is_empty:
        return change.event if now else None
    before = match.summary(change.prev)
    if before and now:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


def _prefix(target: Target) -> str:
    return f"{target.namespace}/" if target.resource.namespaced and target.namespace else ""


def _encode_continue(rev: int, key: str) -> str:
    raw = json.dumps({"v": 1, "rv": rev, "start": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        rev, start = int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise errors.BadRequest(f"continue key is not valid: {e}") from e
    if not start.startswith(prefix):
        raise errors.BadRequest("continue key is not valid: it belongs to another list")
    return rev, start


def list_objects(req: Request, target: Target, ident: Identity) -> Response:
    authorize(ident, "list", target)
    if req.flag("watch"):
        return watch(req, target, ident)
    res = target.resource
    limit = req.int_arg("limit")
    if limit is not None and limit < 0:
        raise errors.BadRequest("limit must not be negative")
    prefix = _prefix(target)
    start_after: str | None = None
    token_rev: int | None = None
    if req.arg("continue"):
        token_rev, start_after = _decode_continue(req.arg("continue") or "", prefix)
    page = list_page(res.key, prefix=prefix, start_after=start_after, limit=limit or None,
                     match=_Matcher(req, target))
    revision = token_rev if token_rev is not None else page.revision
    list_meta: Obj = {"resourceVersion": str(revision)}
    if page.next_key is not None:
        list_meta["continue"] = _encode_continue(revision, page.next_key)
    items = [_as_list_item(o) for o in page.items]
    if tables.wants_table(req.headers.get("accept", "")):
        return ok(tables.render(res, page.items, list_meta, wide=True))
    return ok({"kind": res.list_kind, "apiVersion": res.api_version, "metadata": list_meta, "items": items})


def _as_list_item(obj: Obj) -> Obj:
    """List items carry no kind/apiVersion on the wire, as kube-apiserver serves them."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _gone(rv: int, oldest: int | None) -> Obj:
    detail = f" (the oldest retained is {oldest - 1})" if oldest else ""
    return {"type": "ERROR", "object": errors.Gone(f"too old resource version: {rv}{detail}").status()}


def watch(req: Request, target: Target, ident: Identity) -> Response:
    authorize(ident, "watch", target)
    res = target.resource
    match = _Matcher(req, target)
    prefix = _prefix(target)
    timeout = req.int_arg("timeoutSeconds")
    cap = settings.watch_cap_seconds()
    budget = cap if not timeout or timeout <= 0 else min(float(timeout), cap)
    deadline = time.monotonic() + budget
    bookmarks = req.flag("allowWatchBookmarks")
    events: list[Obj] = []
    rv_arg = req.arg("resourceVersion") or ""
    if rv_arg in ("", "0"):
        # No starting point: the current state as ADDED events, then changes from there.
        page = list_page(res.key, prefix=prefix, match=match)
        events.extend({"type": "ADDED", "object": o} for o in page.items)
        cursor = page.revision
    else:
        try:
            cursor = int(rv_arg)
        except ValueError:
            raise errors.BadRequest(f'resourceVersion "{rv_arg}" is not valid: it must be one returned by '
                                    "a list or a watch") from None
    while True:
        batch, gone = _read_log(res.key, cursor)
        if gone:
            return _stream(events + [_gone(cursor, store.oldest_retained(res.key))])
        for change in batch:
            cursor = change.rev
            kind = _event_type(change, match) if change.key.startswith(prefix) else None
            if kind:
                events.append({"type": kind, "object": change.obj})
        if events or time.monotonic() >= deadline:
            break
        time.sleep(min(settings.watch_poll_seconds(), max(0.0, deadline - time.monotonic())))
    if tables.wants_table(req.headers.get("accept", "")):
        events = [_as_table_event(res, e) for e in events]
    if bookmarks:
        events.append({"type": "BOOKMARK", "object": {
            "kind": res.kind, "apiVersion": res.api_version, "metadata": {"resourceVersion": str(cursor)}}})
    return _stream(events)


def _as_table_event(res: ResourceInfo, event: Obj) -> Obj:
    """`kubectl get -w` asks for Tables: each event then carries a one-row Table."""
    obj = event["object"]
    rv = (obj.get("metadata") or {}).get("resourceVersion", "")
    return {"type": event["type"], "object": tables.render(res, [obj], {"resourceVersion": rv})}


def _contiguous(batch: list[store.Change], cursor: int) -> bool:
    """Revisions are dense: the batch must be cursor+1, cursor+2, ... with no hole."""
    return all(change.rev == cursor + 1 + i for i, change in enumerate(batch))


def _read_log(kind: str, cursor: int) -> tuple[list[store.Change], bool]:
    """The next changes after `cursor`, and whether history after it has expired (a gap)."""
    batch = store.changes_since(kind, cursor, limit=500)
    if not batch and store.head(kind) > cursor:
        # The counter moved past us but the log holds nothing after the cursor: it expired,
        # unless a write committed between our two reads; read once more to tell them apart.
        batch = store.changes_since(kind, cursor, limit=500)
        if not batch:
            return [], True
    if not _contiguous(batch, cursor):
        return [], True
    return batch, False


def _stream(events: list[Obj]) -> Response:
    body = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
    return Response(200, body, {"Content-Type": "application/json"})


def delete_collection(req: Request, target: Target, ident: Identity) -> Response:
    """DELETE on a collection: every object the selectors match, each as a single delete would."""
    from chalicelib.api import verbs

    authorize(ident, "list", target)
    res = target.resource
    if res.key == "core/namespaces":
        raise errors.MethodNotAllowed("deletecollection is not supported for namespaces")
    page = list_page(res.key, prefix=_prefix(target), match=_Matcher(req, target))
    deleted = []
    for obj in page.items:
        md = obj.get("metadata") or {}
        one = Target(res, md.get("namespace") if res.namespaced else None, md.get("name"))
        try:
            deleted.append(verbs.delete(req, one, ident).body)
        except errors.NotFound:
            continue  # deleted meanwhile
    return ok({"kind": res.list_kind, "apiVersion": res.api_version,
               "metadata": {"resourceVersion": str(store.head(res.key))},
               "items": [_as_list_item(o) for o in deleted]})
