"""The integration tests run against a live local cluster: the `live` and `remote_store` fixtures
(`skiff up --detach`: moto server + the API on loopback) live in tests/conftest.py, shared with the
node agent's tests so one session starts one cluster.

Needs kubectl on PATH: the tests fail loudly without it, they are never skipped.
"""
