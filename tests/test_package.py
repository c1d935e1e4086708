"""Package-level promises: cheap import, optional dependencies stay optional."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import perfprim
from perfprim import exceptions


def test_import_perfprim_imports_no_optional_dependency() -> None:
    """``import perfprim`` (in a fresh interpreter) loads no redis, OTel or prometheus."""
    code = (
        "import sys, json, perfprim, perfprim.exceptions;"
        "print(json.dumps(sorted(m for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    modules = json.loads(out)
    heavy = [
        m
        for m in modules
        if m.split(".")[0] in {"redis", "opentelemetry", "prometheus_client", "hdrhistogram"}
    ]
    assert [] == heavy


def test_version_is_a_string() -> None:
    """``__version__`` is read from the installed distribution."""
    assert isinstance(perfprim.__version__, str)
    assert perfprim.__version__[0].isdigit()


def test_unknown_attribute_raises_attribute_error() -> None:
    """Module ``__getattr__`` only serves ``__version__``."""
    with pytest.raises(AttributeError, match="no_such_thing"):
        perfprim.no_such_thing  # noqa: B018


def test_exception_hierarchy() -> None:
    """Every perfprim exception is a PerfprimError and refines the right builtin."""
    assert issubclass(exceptions.ConfigurationError, ValueError)
    assert issubclass(exceptions.MissingDependencyError, ImportError)
    assert issubclass(exceptions.CircuitOpenError, exceptions.BackendError)
    assert issubclass(exceptions.HistogramRangeError, ValueError)
    assert issubclass(exceptions.LockTimeoutError, TimeoutError)
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), exceptions.PerfprimError)


def test_missing_dependency_names_the_install_command() -> None:
    """A missing extra raises MissingDependencyError with the pip command to run."""
    from perfprim._optional import require

    with pytest.raises(exceptions.MissingDependencyError) as info:
        require("no_such_module_xyz", package="xyz", extra="redis", feature="RedisTier")
    assert "pip install 'perfprim[redis]'" in str(info.value)
    assert "xyz" == info.value.package


def test_exported_members() -> None:
    """The public surface of the top-level package is pinned."""
    assert [
        "BackendError",
        "CacheError",
        "ConfigurationError",
        "MissingDependencyError",
        "PerfprimError",
        "__version__",
    ] == perfprim.__all__
