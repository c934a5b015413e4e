"""moto server for the local runtime, with requests applied one at a time.

moto's DynamoDB is not safe under concurrent requests: a cancelled transaction rolls back by
restoring a copy of the whole table, which can erase another request's committed write. Real
DynamoDB is atomic and our store relies on it (invariants 2, 3, 5), so locally we serve moto's app
behind one lock: connections are still accepted concurrently, but each request runs alone.
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server with serialised requests")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5100)
    args = parser.parse_args(argv)
    app = serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()
