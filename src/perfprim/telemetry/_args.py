"""Read named arguments of a call cheaply (no ``Signature.bind`` per call)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from perfprim.exceptions import ConfigurationError

_MISSING = object()

AttributeValue = str | bool | int | float


def _plain(value: object) -> AttributeValue:
    if isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


class ArgReader:
    """Extract the values of named parameters from ``(args, kwargs)``.

    Positions and defaults are resolved once at decoration time; a call costs
    one index or dict lookup per name.
    """

    __slots__ = ("_spec",)

    def __init__(self, func: Callable[..., Any], names: Mapping[str, str]) -> None:
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError) as exc:  # pragma: no cover - builtins only
            msg = f"cannot read the signature of {func!r} to record its arguments"
            raise ConfigurationError(msg) from exc
        params = list(signature.parameters.values())
        spec: list[tuple[str, str, int, object]] = []
        for name, key in names.items():
            param = signature.parameters.get(name)
            if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                available = ", ".join(
                    p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                )
                msg = (
                    f"{func.__qualname__} has no named parameter {name!r} to record; "
                    f"choose among: {available or '(none)'}"
                )
                raise ConfigurationError(msg)
            position = (
                params.index(param)
                if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
                else -1
            )
            default = _MISSING if param.default is param.empty else param.default
            spec.append((name, key, position, default))
        self._spec = tuple(spec)

    def read(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, AttributeValue]:
        """Return ``{key: value}`` for every named argument present in the call."""
        out: dict[str, AttributeValue] = {}
        for name, key, position, default in self._spec:
            if 0 <= position < len(args):
                value = args[position]
            else:
                value = kwargs.get(name, default)
                if value is _MISSING:
                    continue
            out[key] = _plain(value)
        return out


def name_map(names: Sequence[str] | Mapping[str, str], *, option: str) -> dict[str, str]:
    """Normalize ``("a", "b")`` or ``{"a": "key.a"}`` to a parameter -> key mapping.

    Raises:
        ConfigurationError: If ``names`` is a plain string or holds non-strings.
    """
    if isinstance(names, str):
        msg = f"{option} takes a sequence of parameter names, e.g. {option}=({names!r},)"
        raise ConfigurationError(msg)
    pairs: list[tuple[object, object]] = (
        list(names.items()) if isinstance(names, Mapping) else [(n, n) for n in names]
    )
    mapping: dict[str, str] = {}
    for name, key in pairs:
        if not isinstance(name, str) or not isinstance(key, str) or not name or not key:
            msg = f"{option} must hold non-empty strings (got {name!r}: {key!r})"
            raise ConfigurationError(msg)
        mapping[name] = key
    return mapping
