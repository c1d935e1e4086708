"""Serializers for Redis tiers: JSON (the default) and HMAC-signed pickle.

A serializer turns a value into bytes and back. Each carries a one-byte
``format_id`` that the entry codec writes into the header, so a payload
written by one serializer is never handed to another.

``loads`` is called on bytes that came over the network: it raises
:class:`UntrustedPayload` (or any exception) for bytes it will not trust, and
the codec turns that into a miss. :class:`PickleSerializer` checks an
HMAC-SHA256 signature with a constant-time compare *before* unpickling, so a
foreign or tampered payload is never unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from json.scanner import make_scanner
from typing import Protocol, runtime_checkable

from perfprim.exceptions import ConfigurationError, SerializationError

__all__ = ["JsonSerializer", "PickleSerializer", "Serializer", "UntrustedPayload"]

_DIGEST_SIZE = hashlib.sha256().digest_size  # 32 bytes
_MIN_SECRET_BYTES = 16


class UntrustedPayload(Exception):  # noqa: N818 - a signal, caught by the codec, never raised to users
    """Internal signal: the payload is foreign, unsigned or tampered with."""


@runtime_checkable
class Serializer(Protocol):
    """Encodes values to bytes for a Redis tier and back."""

    format_id: int
    """One byte (1-255) written in each entry's header; unique per serializer kind."""

    def dumps(self, value: object) -> bytes:
        """Encode ``value``; raise ``SerializationError`` if it cannot."""
        ...

    def loads(self, data: bytes) -> object:
        """Decode ``data``; raise :class:`UntrustedPayload` (or any error) if it is not trusted."""
        ...


class JsonSerializer:
    """JSON (UTF-8, compact); the default serializer of the Redis tiers.

    Safe to decode from any source. JSON knows ``dict`` (with ``str`` keys),
    ``list``, ``str``, ``int``, ``float``, ``bool`` and ``None``: a tuple comes
    back as a list and non-``str`` dict keys are refused rather than silently
    turned into strings.

    >>> s = JsonSerializer()
    >>> s.loads(s.dumps({"id": 42, "tags": ["a"], "x": None}))
    {'id': 42, 'tags': ['a'], 'x': None}
    """

    format_id = 1

    __slots__ = ("_decode", "_encoder", "_scan")

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), check_circular=True, allow_nan=True
        )
        decoder = json.JSONDecoder()
        self._decode = decoder.decode
        # The decoder's own scanner: ``decode`` is this plus two whitespace regex matches,
        # which the compact payloads we write never need (anything else takes ``decode``).
        self._scan = make_scanner(decoder)  # type: ignore[arg-type]  # typeshed: the C type

    def dumps(self, value: object) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON.

        Args:
            value: A JSON-compatible value.

        Returns:
            The encoded bytes.

        Raises:
            SerializationError: If ``value`` (or something inside it) is not
                JSON-compatible; the message names the fix.
        """
        try:
            _check_keys(value)
            return self._encoder.encode(value).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(
                f"JsonSerializer cannot encode a value of type {type(value).__name__}: {exc}. "
                "Convert it to JSON types (dict with str keys, list, str, int, float, "
                "bool, None) before caching, or build the tier with "
                "serializer=PickleSerializer(secret=...)"
            ) from exc

    def loads(self, data: bytes) -> object:
        """Decode UTF-8 JSON bytes.

        Args:
            data: Bytes from Redis.

        Returns:
            The decoded value.

        Raises:
            ValueError: If ``data`` is not valid UTF-8 JSON.
        """
        text = data.decode()
        try:
            value, end = self._scan(text, 0)
        except StopIteration:  # leading whitespace or no JSON value: decode() says which
            return self._decode(text)
        if end != len(text):  # trailing whitespace (fine) or extra data (an error)
            return self._decode(text)
        return value

    def __repr__(self) -> str:
        return "JsonSerializer()"


_CONTAINERS = (dict, list, tuple)


def _check_keys(value: object) -> None:
    # The stdlib encoder turns int/float/bool/None keys into strings; the value
    # would come back different, so refuse it at set time instead. Scalars are
    # skipped before the call: most items of a cached value are scalars.
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"dict key {key!r} is not a str")
            if isinstance(item, _CONTAINERS):
                _check_keys(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, _CONTAINERS):
                _check_keys(item)


class PickleSerializer:
    """Pickle, signed with HMAC-SHA256, for values JSON cannot carry.

    Every payload is ``signature (32 bytes) + pickle``. ``loads`` verifies the
    signature with :func:`hmac.compare_digest` before unpickling, so only
    payloads written by a holder of the secret are ever unpickled. Pickle runs
    code on load: share the secret only between processes you trust.

    Args:
        secret: The signing key (``bytes`` or ``str``, at least 16 bytes);
            required.
        previous_secrets: Older keys still accepted on read, for rotation
            (new payloads are always signed with ``secret``).
        protocol: The pickle protocol.

    Raises:
        ConfigurationError: If ``secret`` is missing or shorter than 16 bytes.

    >>> s = PickleSerializer(secret=b"0123456789abcdef")
    >>> s.loads(s.dumps({1, 2}))
    {1, 2}
    """

    format_id = 2

    __slots__ = ("_keys", "_protocol", "_secret")

    def __init__(
        self,
        *,
        secret: bytes | str | None = None,
        previous_secrets: tuple[bytes | str, ...] = (),
        protocol: int = pickle.HIGHEST_PROTOCOL,
    ) -> None:
        self._secret = _as_key(secret, "secret")
        self._keys = (self._secret, *(_as_key(s, "previous_secrets") for s in previous_secrets))
        self._protocol = protocol

    def dumps(self, value: object) -> bytes:
        """Pickle and sign ``value``.

        Args:
            value: Any picklable value.

        Returns:
            The signature followed by the pickle.

        Raises:
            SerializationError: If ``value`` cannot be pickled.
        """
        try:
            body = pickle.dumps(value, protocol=self._protocol)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            raise SerializationError(
                f"PickleSerializer cannot pickle a value of type {type(value).__name__}: {exc}. "
                "Cache a picklable representation instead (plain data, a dataclass "
                "defined at module level)"
            ) from exc
        return hmac.digest(self._secret, body, "sha256") + body

    def loads(self, data: bytes) -> object:
        """Verify the signature of ``data`` and unpickle it.

        Args:
            data: Bytes from Redis.

        Returns:
            The value.

        Raises:
            UntrustedPayload: If the signature is missing or does not match any
                accepted secret (nothing is unpickled then).
        """
        if len(data) < _DIGEST_SIZE:
            raise UntrustedPayload("payload shorter than its signature")
        signature = data[:_DIGEST_SIZE]
        body = data[_DIGEST_SIZE:]
        for key in self._keys:
            if hmac.compare_digest(signature, hmac.digest(key, body, "sha256")):
                return pickle.loads(body)  # noqa: S301 - signed by a holder of the secret
        raise UntrustedPayload("bad signature")

    def __repr__(self) -> str:
        return f"PickleSerializer(secret=<{len(self._secret)} bytes>, protocol={self._protocol})"


def _as_key(secret: object, name: str) -> bytes:
    if secret is None or (isinstance(secret, (bytes, str)) and not secret):
        raise ConfigurationError(
            f"PickleSerializer needs {name}=...: unpickling unsigned bytes from Redis "
            "would run whatever code they contain. Pass a random key shared by your "
            "processes, e.g. secret=os.environ['CACHE_SECRET'] (make one with "
            "python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    if isinstance(secret, str):
        secret = secret.encode()
    if not isinstance(secret, bytes):
        raise ConfigurationError(f"{name} must be bytes or str, got {type(secret).__name__}")
    if len(secret) < _MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"{name} must be at least {_MIN_SECRET_BYTES} bytes long, got {len(secret)}; "
            "use secrets.token_hex(32)"
        )
    return secret
