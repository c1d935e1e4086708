"""Uses the public API the way a user would; ``nox -s typing`` checks it with mypy --strict.

This file is not run by pytest (it is not named test_*); it must type-check.
"""

from __future__ import annotations

import perfprim
from perfprim.exceptions import ConfigurationError, PerfprimError
from perfprim.testing import RedisServer

version: str = perfprim.__version__
error: PerfprimError = ConfigurationError("bad option: pass a float in seconds")
server: RedisServer = RedisServer()
url: str = server.url
