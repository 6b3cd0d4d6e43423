"""Errors of the job lifecycle and of the storage port.

Every error says in plain words what is wrong and what to do. `permanent` errors are never
retried (bad input, missing permissions); transient ones are retried with backoff. `fix_by`
says whose move a failure is: "user" (fix or replace the file) or "operator" (the setup).
"""

from __future__ import annotations

from gpu.errors import EngineError


class DropreelError(Exception):
    """Base of every error dropreel raises on purpose."""

    permanent: bool = False
    http_status: int = 500
    fix_by: str = "operator"


class StorageError(DropreelError):
    """The bucket or folder could not be read or written."""


class TransientStorageError(StorageError):
    """The storage service is busy or unreachable right now; retried with backoff."""


class PreconditionFailed(StorageError):
    """A conditional write lost a race: the key exists, or changed since it was read."""

    permanent = True
    http_status = 412


class ObjectNotFound(StorageError):
    """The key does not exist (it may have been deleted since the listing)."""

    permanent = True
    http_status = 404


class AccessDenied(StorageError):
    """The credentials may not do this; fix the bucket policy or the keys."""

    permanent = True
    http_status = 403


class OutsideWatchRoot(StorageError):
    """A key outside the watch root was asked for; dropreel never touches those."""

    permanent = True
    http_status = 400


class KeyTooLong(StorageError):
    """A key is longer than the store allows (S3: 1,024 bytes of UTF-8); rename to shorten it."""

    permanent = True
    http_status = 400
    fix_by = "user"


class InputRejected(DropreelError):
    """An input file cannot be used; the message says which and why. Never retried."""

    permanent = True
    http_status = 422
    fix_by = "user"


class LeaseLost(DropreelError):
    """Another worker took this job back (our lease expired); stop without writing outputs."""

    permanent = True


def fix_by(err: BaseException) -> str:
    """Whose move a failure is: "user" only for errors about the user's files; anything else
    (a missing package, a crash, the storage) is the operator's."""
    return getattr(err, "fix_by", "operator")


def is_permanent(err: BaseException) -> bool:
    """Never retried: errors marked permanent, and a package missing on this machine (no retry
    installs it)."""
    return getattr(err, "permanent", isinstance(err, ImportError))


def plain_words(err: BaseException) -> str:
    """An error as status.json and Slack show it: our own errors in full (they are written for
    people), a missing package as the operator's move, anything else as `first_line`."""
    if isinstance(err, DropreelError | EngineError):
        return str(err)
    if isinstance(err, ImportError):
        from config.extras import install_hint

        package = (err.name or "").partition(".")[0] or "a package"
        return (
            f"the Python package {package!r} is not installed on this machine: the operator "
            f"must fix the setup ({install_hint(package)}); your files are fine"
        )
    return first_line(err)


def first_line(err: BaseException) -> str:
    """Type and first line only, so nothing secret (a URL, a token in a repr) leaks."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}"[:500] if text else type(err).__name__
