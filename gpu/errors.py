"""Errors raised by engines and media code. `permanent` ones are never retried.

`fix_by` says whose move a failure is: "user" (fix or replace the file) or "operator" (the
machine's setup: a missing package, missing weights, a wrong setting). Anything not marked as
the user's is the operator's, so a setup problem is never blamed on a user's file.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of engine and media errors."""

    permanent: bool = False
    fix_by: str = "operator"


class InputError(EngineError):
    """An input cannot be used (corrupt, too large, out of bounds); the message says why."""

    permanent = True
    fix_by = "user"


class EngineNotFound(EngineError):
    """No engine is registered under that name."""

    permanent = True


class EngineSetupError(EngineError):
    """The engine cannot run on this machine (a package is not installed): the operator's move."""

    permanent = True

    def __init__(self, engine: str, package: str, install: str) -> None:
        self.engine, self.package, self.install = engine, package, install
        super().__init__(
            f"engine {engine!r} needs the Python package {package!r}, which is not installed on "
            f"this machine: the operator must fix the setup ({install}); your files are fine"
        )


class WeightsMissing(EngineError):
    """The engine's weights are not in the cache; the message names the command that fixes it."""

    permanent = True


class EncodeError(EngineError):
    """The MP4 could not be written."""
