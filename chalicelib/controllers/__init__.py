"""Controllers: level-triggered reconcilers driven by the objects table's stream and a periodic resync.

Each controller is a module with a `sync(client, namespace, name)` that reads the current state and
converges it; stream records and the resync only say which keys to sync (invariant 4).
"""
