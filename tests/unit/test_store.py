"""The store: optimistic concurrency, dense revisions, consistent snapshots, change-log expiry."""

from __future__ import annotations

import pytest

from chalicelib.store import objects as store
from chalicelib.store.snapshot import list_page

KIND = "core/configmaps"


def cm(name: str, value: str = "1") -> dict:
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "namespace": "ns"},
            "data": {"v": value}}


def test_create_update_delete_advance_one_revision_each(aws: None) -> None:
    start = store.head(KIND)
    a = store.create(KIND, "ns/a", cm("a"))
    assert a["metadata"]["resourceVersion"] == str(start + 1)
    b = store.update(KIND, "ns/a", cm("a", "2"), expected_rv=start + 1)
    assert b["metadata"]["resourceVersion"] == str(start + 2)
    store.delete(KIND, "ns/a", b, expected_rv=start + 2)
    assert store.get(KIND, "ns/a") is None
    log = store.changes_since(KIND, start)
    assert [(c.rev, c.event) for c in log] == [(start + 1, "ADDED"), (start + 2, "MODIFIED"),
                                               (start + 3, "DELETED")]


def test_stale_update_conflicts_and_writes_nothing(aws: None) -> None:
    store.create(KIND, "ns/a", cm("a"))
    rv = store.head(KIND)
    store.update(KIND, "ns/a", cm("a", "2"), expected_rv=rv)
    with pytest.raises(store.StoreConflict):
        store.update(KIND, "ns/a", cm("a", "3"), expected_rv=rv)
    assert store.get(KIND, "ns/a")["data"] == {"v": "2"}
    assert store.head(KIND) == rv + 1


def test_create_existing_conflicts(aws: None) -> None:
    store.create(KIND, "ns/a", cm("a"))
    head = store.head(KIND)
    with pytest.raises(store.StoreConflict):
        store.create(KIND, "ns/a", cm("a"))
    assert store.head(KIND) == head


def test_update_missing_is_not_found(aws: None) -> None:
    with pytest.raises(store.StoreNotFound):
        store.update(KIND, "ns/missing", cm("missing"), expected_rv=1)


def test_too_large_object_is_refused_before_writing(aws: None) -> None:
    from chalicelib import errors

    big = cm("big", "x" * (store.MAX_BODY_BYTES + 1))
    with pytest.raises(errors.TooLarge):
        store.create(KIND, "ns/big", big)
    assert store.get(KIND, "ns/big") is None


def test_snapshot_pages_and_revision(aws: None) -> None:
    for i in range(5):
        store.create(KIND, f"ns/c{i}", cm(f"c{i}"))
    page = list_page(KIND, prefix="ns/", limit=2)
    assert [o["metadata"]["name"] for o in page.items] == ["c0", "c1"]
    assert page.next_key == "ns/c1"
    rest = list_page(KIND, prefix="ns/", start_after=page.next_key)
    assert [o["metadata"]["name"] for o in rest.items] == ["c2", "c3", "c4"]
    assert rest.next_key is None
    assert page.revision == store.head(KIND)


def test_snapshot_replays_writes_that_race_the_query(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    store.create(KIND, "ns/a", cm("a"))
    store.create(KIND, "ns/b", cm("b"))
    real_scan = store.scan_objects

    def racing_scan(*args, **kwargs):  # a writer commits while the query pages
        first = True
        for item in real_scan(*args, **kwargs):
            yield item
            if first:
                first = False
                b = store.get(KIND, "ns/b")
                store.delete(KIND, "ns/b", b, int(b["metadata"]["resourceVersion"]))
                store.create(KIND, "ns/c", cm("c"))

    monkeypatch.setattr(store, "scan_objects", racing_scan)
    page = list_page(KIND, prefix="ns/")
    assert [o["metadata"]["name"] for o in page.items] == ["a", "c"]
    assert page.revision == store.head(KIND)


def test_compaction_drops_old_history(aws: None) -> None:
    for i in range(3):
        store.create(KIND, f"ns/x{i}", cm(f"x{i}"))
    head = store.head(KIND)
    assert store.compact(KIND, head - 1) >= 2
    assert store.oldest_retained(KIND) == head


def test_lease_excludes_a_second_holder_until_released_or_expired(aws: None) -> None:
    from chalicelib.store import locks

    with locks.lease("replicaset/default/web"):
        with pytest.raises(locks.Held), locks.lease("replicaset/default/web"):
            pass
        with locks.lease("replicaset/default/other"):
            pass
    with locks.lease("replicaset/default/web"):
        pass
    with locks.lease("k", seconds=-1), locks.lease("k"):  # an expired lease can be taken over
        pass
