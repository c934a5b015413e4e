"""The store against moto server with concurrent writers: dense revisions, no lost update."""

from __future__ import annotations

import threading


def test_concurrent_writers_get_dense_unique_revisions(remote_store: None) -> None:
    from chalicelib.store import objects as store

    kind = "test/concurrency"
    start = store.head(kind)
    failures: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(10):
                store.create(kind, f"ns/w{i}-{j}", {"metadata": {"name": f"w{i}-{j}"}})
        except BaseException as e:  # noqa: BLE001
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    changes = store.changes_since(kind, start)
    assert [c.rev for c in changes] == list(range(start + 1, start + 61))
    assert len({c.key for c in changes}) == 60


def test_concurrent_updates_lose_nothing(remote_store: None) -> None:
    """Read-modify-write counters from many threads: every increment lands exactly once."""
    from chalicelib.store import objects as store

    kind = "test/counter"
    store.create(kind, "ns/c", {"metadata": {"name": "c"}, "n": 0})

    def bump(times: int) -> None:
        done = 0
        while done < times:
            obj = store.get(kind, "ns/c")
            assert obj is not None
            try:
                store.update(kind, "ns/c", {**obj, "n": obj["n"] + 1}, int(obj["metadata"]["resourceVersion"]))
                done += 1
            except store.StoreConflict:
                continue

    threads = [threading.Thread(target=bump, args=(10,)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = store.get(kind, "ns/c")
    assert final is not None and final["n"] == 50
