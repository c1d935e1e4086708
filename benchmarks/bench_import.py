"""Import cost: ``import perfprim`` against ``import cachetools``, fresh each round."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def fresh_import(name: str) -> None:
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]
    importlib.import_module(name)


def test_import_perfprim(compare: Callable[..., Any]) -> None:
    compare("import", "perfprim", fresh_import, "perfprim")


def test_import_cachetools(compare: Callable[..., Any]) -> None:
    compare("import", "cachetools", fresh_import, "cachetools")
