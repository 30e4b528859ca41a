"""The server's hottest request lines, answered without FastAPI's routing and middleware stack.

Appends, inclusion and consistency proofs and the checkpoint are what every component and
every log client call most. They are plain Starlette endpoints (one implementation, also
registered on the app's router); :class:`HotPaths` dispatches an exact ``(method, path)`` to
them straight away, skipping route matching over every router, dependency solving and five
middleware layers that would only re-find the same function (a third of the server's CPU per
append, most of a proof's time). It sits inside the app's outermost error middleware, so an
unexpected exception still becomes the one JSON 500; custodes errors get the one JSON error
shape here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from custodes.errors import Error
from custodes.server._errors import error_response

__all__ = ["Endpoint", "HotPaths"]

Endpoint = Callable[[Request], Awaitable[Response]]


class HotPaths:
    """Dispatches exact request lines to their endpoints; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer an exact (method, path) with its endpoint, a custodes error as the API's
        JSON error; pass every other request on."""
        if scope["type"] == "http":
            endpoint = self.routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                request = Request(scope, receive)
                try:
                    response = await endpoint(request)
                except Error as exc:
                    response = error_response(exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
