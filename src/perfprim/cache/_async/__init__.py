"""The one hand-written source of the tiered cache, the Redis tier and the Redis lock (asyncio).

``scripts/unasync.py`` generates :mod:`perfprim.cache._sync` from these
modules; CI (``nox -s unasync-check``) fails when the two differ. Change the
code here, never there.
"""
