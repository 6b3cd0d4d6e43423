"""Errors raised by engines and media code. `permanent` ones are never retried."""

from __future__ import annotations


class EngineError(Exception):
    """Base of engine and media errors."""

    permanent: bool = False


class InputError(EngineError):
    """An input cannot be used (corrupt, too large, out of bounds); the message says why."""

    permanent = True


class EngineNotFound(EngineError):
    """No engine is registered under that name."""

    permanent = True


class WeightsMissing(EngineError):
    """The engine's weights are not in the cache; the message names the command that fixes it."""

    permanent = True


class EncodeError(EngineError):
    """The MP4 could not be written."""
