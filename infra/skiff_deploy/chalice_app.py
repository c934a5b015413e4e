"""What the Chalice app declares, read from the app itself: its routes (as API Gateway's Swagger, the
way `chalice deploy` makes it) and its event handlers (handler strings, batch settings, schedules).

Importing app.py makes no AWS call (Chalice's habit, kept by chalicelib), so the program can do it at
preview time; the ARNs it holds at import are placeholders, replaced by the real ones here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from skiff_deploy.bundle import REPO

INVOKE_ARN_PLACEHOLDER = "${api_handler_invoke_arn}"
API_HANDLER = "app.app"
"""The Lambda handler of a Chalice app's API (what Chalice's packager writes)."""


@dataclass(frozen=True)
class StreamHandler:
    name: str  # the Chalice name ("controllers"), also the function's name suffix
    handler: str  # "app.on_objects_change"
    batch_size: int
    batching_window_seconds: int
    starting_position: str


@dataclass(frozen=True)
class ScheduledHandler:
    name: str
    handler: str
    schedule_expression: str


def _app() -> Any:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import app

    return app.app


def stream_handlers() -> list[StreamHandler]:
    from chalice.app import DynamoDBEventConfig

    return [StreamHandler(name=e.name, handler=e.handler_string, batch_size=e.batch_size,
                          batching_window_seconds=e.maximum_batching_window_in_seconds,
                          starting_position=e.starting_position)
            for e in _app().event_sources if isinstance(e, DynamoDBEventConfig)]


def scheduled_handlers() -> list[ScheduledHandler]:
    from chalice.app import ScheduledEventConfig

    return [ScheduledHandler(name=e.name, handler=e.handler_string,
                             schedule_expression=e.schedule_expression if isinstance(e.schedule_expression, str)
                             else e.schedule_expression.to_string())  # Chalice's Rate() and Cron()
            for e in _app().event_sources if isinstance(e, ScheduledEventConfig)]


def swagger(region: str) -> dict[str, Any]:
    """The REST API definition for the app's routes, with the API function's invoke ARN left as
    INVOKE_ARN_PLACEHOLDER (API Gateway needs Chalice's own resource paths: Chalice routes a request by
    requestContext.resourcePath, so a {proxy+} catch-all would not reach its views)."""
    from chalice.deploy.swagger import SwaggerGenerator

    class _Generator(SwaggerGenerator):  # type: ignore[misc]
        def _uri(self, lambda_arn: str | None = None) -> str:
            return INVOKE_ARN_PLACEHOLDER

    doc: dict[str, Any] = _Generator(region, {}).generate_swagger(_app())
    return doc
