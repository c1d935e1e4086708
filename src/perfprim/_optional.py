"""Import optional dependencies with a message that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from perfprim.exceptions import MissingDependencyError


def require(module: str, *, package: str, extra: str, feature: str) -> ModuleType:
    """Import an optional dependency or raise :class:`MissingDependencyError`.

    Args:
        module: The module to import, e.g. ``"redis"``.
        package: The distribution that provides it, e.g. ``"redis"``.
        extra: The perfprim extra that installs it, e.g. ``"redis"``.
        feature: What needs it, for the message, e.g. ``"RedisTier"``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: If the module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, extra, feature) from exc
