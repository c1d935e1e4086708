"""The synchronous cache, Redis tier and Redis lock, generated from :mod:`perfprim.cache._async`.

Do not edit these modules: change the asyncio source and run
``python scripts/unasync.py`` (CI's ``nox -s unasync-check`` fails when they differ).
"""
