"""The route template of an ASGI request, read from what the framework's router left in the scope.

Starlette's router (so FastAPI's) stores the route it matched in
``scope["route"]``, the innermost one when routers are nested, and the
top-level router in ``scope["router"]``. The template of a mounted route is
the mounts' paths plus the route's own, so :class:`RouteResolver` walks the
router's routes once (mounts, sub-applications, FastAPI's included routers)
into a map from route object to full template: each request then costs one
dict lookup, never a regular expression per route as in the peers that match
the path again after the app ran. Nothing here imports a framework: the
routes are read through their ``path``, ``routes``, ``methods`` and
(FastAPI) ``effective_route_contexts()`` attributes.

When the router did not run at all (neither ``route`` nor ``router`` in the
scope: a response cache answered the request, or a middleware did), the
path is matched against the routes' templates in routing order, once per
distinct path: the router is the one seen on an earlier request, or the one
found by following the wrapped applications' ``app`` and ``router``
attributes. Only such requests pay for it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

from perfprim.web._metrics_core import UNMATCHED_ROUTE

__all__ = ["RouteResolver", "find_router", "template_regex"]

_PARAM = re.compile(r"{([^}:]+)(?::([^}]+))?}")
_CONVERTORS = {
    "str": r"[^/]+",
    "path": r".*",
    "int": r"[0-9]+",
    "float": r"[0-9]+(?:\.[0-9]+)?",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
}


def template_regex(template: str) -> re.Pattern[str]:
    """Compile a Starlette path template (``/items/{item_id:int}``) into an anchored regex."""
    out = []
    last = 0
    for match in _PARAM.finditer(template):
        out.append(re.escape(template[last : match.start()]))
        out.append(f"(?:{_CONVERTORS.get(match.group(2) or 'str', _CONVERTORS['str'])})")
        last = match.end()
    out.append(re.escape(template[last:]))
    return re.compile("".join(out) + r"\Z")


_MAX_PATHS = 4096
"""Distinct paths whose template :meth:`RouteResolver.resolve` keeps when the router did not run."""


class _RouteMap:
    """id(route object) -> (route object, its full templates), for one top-level router.

    Also the templates in routing order, with the methods of their route, to
    match a path the router never saw (:meth:`match`).
    """

    def __init__(self, router: Any) -> None:
        self.router = router
        self.templates: dict[int, tuple[Any, list[str]]] = {}
        self.regexes: dict[str, re.Pattern[str]] = {}
        self.ordered: list[tuple[str, Any]] = []
        self._walk(getattr(router, "routes", None) or (), "")

    def _add(self, route: Any, template: str, *, regex: str | None = None) -> None:
        kept = self.templates.setdefault(id(route), (route, []))[1]
        if template not in kept:
            kept.append(template)
            if template != UNMATCHED_ROUTE:
                if regex is not None:
                    self.regexes[template] = template_regex(regex)
                self.ordered.append((template, getattr(route, "methods", None)))

    def match(self, method: str, path: str) -> str:
        """The template of the first route whose path matches (its method too, when one does)."""
        partial = UNMATCHED_ROUTE
        for template, methods in self.ordered:
            regex = self.regexes.get(template)
            if regex is None:
                regex = self.regexes.setdefault(template, template_regex(template))
            if regex.match(path):
                if not methods or method in methods:
                    return template
                if partial == UNMATCHED_ROUTE:
                    partial = template
        return partial

    def _walk(self, routes: Iterable[Any], prefix: str) -> None:
        for route in list(routes):
            contexts = getattr(route, "effective_route_contexts", None)
            if callable(contexts):  # FastAPI's include_router: full paths per inclusion
                for context in contexts():
                    inner = getattr(context, "starlette_route", None)
                    original = getattr(context, "original_route", None)
                    if inner is not None:
                        self._walk([inner], prefix)
                        inner_path = getattr(inner, "path", None)
                        if original is not None and isinstance(inner_path, str):
                            self._add(original, prefix + inner_path)
                        continue
                    path = getattr(context, "path", None)
                    if isinstance(path, str):
                        self._add(original if original is not None else context, prefix + path)
                continue
            path = getattr(route, "path", "")
            path = path if isinstance(path, str) else ""
            children = getattr(route, "routes", None)
            if children is not None:  # a Mount or a Host
                if children:
                    # The mount itself in scope["route"]: no inner route matched.
                    self._add(route, UNMATCHED_ROUTE)
                    self._walk(children, prefix + path)
                else:  # an opaque mounted ASGI app (StaticFiles, ...)
                    mounted = prefix + path
                    self._add(route, mounted + "/{path}", regex=mounted + "/{path:path}")
                continue
            if path:
                self._add(route, prefix + path)

    def lookup(self, route: Any) -> list[str] | None:
        found = self.templates.get(id(route))
        if found is None or found[0] is not route:
            return None
        return found[1]

    def pick(self, templates: list[str], path: str) -> str:
        """The template (of several inclusions of one route) that matches ``path``."""
        for template in templates:
            regex = self.regexes.get(template)
            if regex is None:
                regex = self.regexes.setdefault(template, template_regex(template))
            if regex.match(path):
                return template
        return templates[0]


class RouteResolver:
    """Turns an ASGI scope, after the app ran, into the ``http.route`` label.

    The map of a router is built on its first request and rebuilt once when a
    route appears that it does not know (routes added later).

    Args:
        app: The wrapped application, searched for its router (through the
            ``app`` and ``router`` attributes of the applications it wraps)
            when a request reaches no router and none was seen yet.
    """

    def __init__(self, app: Any = None) -> None:
        self._app = app
        self._maps: dict[int, _RouteMap] = {}
        self._fallbacks: dict[int, tuple[Any, str]] = {}
        self._latest: _RouteMap | None = None
        self._searched = False
        self._paths: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def resolve(self, scope: MutableMapping[str, Any]) -> str:
        """Return the full route template of a request, or :data:`UNMATCHED_ROUTE`.

        Args:
            scope: The request's scope, after the app handled it.

        Returns:
            The template.
        """
        route = scope.get("route")
        if route is None:
            if "router" in scope:  # the router ran and matched nothing
                return UNMATCHED_ROUTE
            return self._unrouted(scope)
        if isinstance(route, str):
            return route
        router = scope.get("router")
        if router is None:
            template = getattr(route, "path", None)
            return template if isinstance(template, str) else UNMATCHED_ROUTE
        route_map = self._maps.get(id(router))
        if route_map is None or route_map.router is not router:
            route_map = self._rebuild(router)
        templates = route_map.lookup(route)
        if templates is None:
            return self._unknown(router, route)
        if len(templates) == 1:
            return templates[0]
        return route_map.pick(templates, app_path(scope))

    def _rebuild(self, router: Any) -> _RouteMap:
        with self._lock:
            route_map = _RouteMap(router)
            if len(self._maps) > 16:  # routers that come and go (tests): keep few
                self._maps.clear()
            self._maps[id(router)] = route_map
            self._latest = route_map
            self._paths.clear()
            return route_map

    def _unrouted(self, scope: MutableMapping[str, Any]) -> str:
        """The template of a request the router never saw, from its path."""
        key = (scope["method"], app_path(scope))
        template = self._paths.get(key)
        if template is not None:
            return template
        route_map = self._latest
        if route_map is None:
            if self._searched:
                return UNMATCHED_ROUTE
            self._searched = True
            router = find_router(self._app)
            if router is None:
                return UNMATCHED_ROUTE
            route_map = self._rebuild(router)
        template = route_map.match(*key)
        with self._lock:
            if len(self._paths) < _MAX_PATHS:
                self._paths[key] = template
        return template

    def _unknown(self, router: Any, route: Any) -> str:
        kept = self._fallbacks.get(id(route))
        if kept is not None and kept[0] is route:
            return kept[1]
        templates = self._rebuild(router).lookup(route)  # a route added since the map was built
        if templates is not None:
            return templates[0]
        path = getattr(route, "path", None)
        template = path if isinstance(path, str) and path else UNMATCHED_ROUTE
        with self._lock:
            if len(self._fallbacks) < 1000:
                self._fallbacks[id(route)] = (route, template)
        return template


def find_router(app: Any) -> Any:
    """The router an application wraps: follows ``router`` and ``app`` attributes, 32 deep.

    Returns:
        The first object with a ``routes`` list (Starlette's ``Router``), or None.
    """
    seen = 0
    while app is not None and seen < 32:
        if isinstance(getattr(app, "routes", None), list) and not hasattr(app, "router"):
            return app
        router = getattr(app, "router", None)
        if router is not None and isinstance(getattr(router, "routes", None), list):
            return router
        app = getattr(app, "app", None)
        seen += 1
    return None


def app_path(scope: MutableMapping[str, Any]) -> str:
    """The request path relative to the application: the path minus the server's root path.

    Starlette keeps the top-level root path in ``app_root_path`` once a mount
    changed ``root_path``.
    """
    path: str = scope["path"]
    root = scope.get("app_root_path", scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path
