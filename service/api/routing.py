"""Routes whose endpoint takes the request (and string path parameters) and returns a response are
called as they are.

FastAPI wraps every endpoint in a handler that solves its dependencies, reads and validates a body
and serializes what the endpoint returns, inside two exit stacks for dependencies with ``yield``.
Most of the service's endpoints read their own bodies (bounded, with errors that name the field)
and build their own responses: for them all that only costs time (about 45 us of a /decode
request's 194 in-process, measured). Such a route is Starlette's plain request-response app around
the endpoint; exceptions still reach the app's handlers. Endpoints with other parameters, or that
return data for FastAPI to serialize, keep FastAPI's handler.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.routing import request_response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class DirectRoute(APIRoute):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        handler = self._direct_handler()
        if handler is not None:
            self.app = request_response(handler)

    def get_route_handler(self) -> Handler:
        return self._direct_handler() or super().get_route_handler()

    def _direct_handler(self) -> Handler | None:
        d = self.dependant
        takes_the_request = d.request_param_name is not None and not (
            d.query_params or d.header_params or d.cookie_params or d.body_params or d.dependencies
        )
        plain_path = all(p.field_info.annotation in (str, str | None) for p in d.path_params)
        returns = typing.get_type_hints(self.endpoint).get("return")
        answers_itself = inspect.isclass(returns) and issubclass(returns, Response)
        if not (takes_the_request and plain_path and answers_itself):
            return None
        if not inspect.iscoroutinefunction(self.endpoint):
            return None
        if not d.path_params:
            return self.endpoint
        endpoint = self.endpoint

        async def with_path(request: Request) -> Response:
            return await endpoint(request, **request.path_params)

        return with_path
