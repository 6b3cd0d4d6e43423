"""Which `dropreel[extra]` installs a Python package, read from the installed package's own
metadata (pyproject.toml's optional-dependencies), so an error can name the command that fixes
a missing package instead of showing a traceback.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import metadata

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*).*extra\s*==\s*['\"]([^'\"]+)['\"]")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@lru_cache(maxsize=1)
def _requirements() -> list[tuple[str, str]]:
    """(package, extra) for each optional dependency, package names normalised."""
    try:
        requirements = metadata.requires("dropreel") or []
    except metadata.PackageNotFoundError:
        return []
    found = []
    for line in requirements:
        match = _REQUIREMENT.match(line)
        if match and match.group(2) not in ("dev", "test"):
            found.append((_normal(match.group(1)), match.group(2)))
    return found


def _extras() -> dict[str, str]:
    """Package -> the first extra that installs it."""
    found: dict[str, str] = {}
    for package, extra in _requirements():
        found.setdefault(package, extra)
    return found


def missing_packages(extra: str) -> list[str]:
    """The packages of `extra` that cannot be imported here (found without importing them)."""
    return [package for package, name in _requirements() if name == extra and not _found(package)]


def _found(package: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(package) is not None
    except ValueError:  # in sys.modules as None: imports of it are blocked
        return False


def extra_for(package: str) -> str | None:
    """The dropreel extra that installs `package` (an import name such as torch), if any."""
    return _extras().get(_normal(package))


def install_hint(package: str) -> str:
    """What to run to install a missing package, in words."""
    extra = extra_for(package)
    if extra:
        return f"pip install 'dropreel[{extra}]'"
    return f"pip install {package}"


class MissingExtra(ImportError):
    """A command needs a package that is not installed; the message names the extra."""


def require(package: str, command: str) -> None:
    """Raise MissingExtra if `package` cannot be imported; `command` names what needs it."""
    if not _found(package):
        raise MissingExtra(
            f"dropreel {command} needs the Python package {package!r}, which is not installed: "
            f"{install_hint(package)}"
        )
