"""Import cost: ``import perfprim`` against ``import cachetools``, fresh each round."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _restore_modules() -> Iterator[None]:
    """Put the modules imported before back, so later benchmarks keep one set of classes.

    A fresh import makes new classes (a new ``LatencyHistogram``); objects of the
    old and new classes then meet in later benchmarks and fail isinstance checks.
    """
    saved = {k: v for k, v in sys.modules.items() if k.startswith(("perfprim", "cachetools"))}
    yield
    for name in [m for m in sys.modules if m.startswith(("perfprim", "cachetools"))]:
        del sys.modules[name]
    sys.modules.update(saved)


def fresh_import(name: str) -> None:
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]
    importlib.import_module(name)


def test_import_perfprim(compare: Callable[..., Any]) -> None:
    compare("import", "perfprim", fresh_import, "perfprim")


def test_import_cachetools(compare: Callable[..., Any]) -> None:
    compare("import", "cachetools", fresh_import, "cachetools")
