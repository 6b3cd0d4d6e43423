"""Engine registration as data: name -> where the class lives, what it serves, which GPU.

Routing, the Modal app and tests all read this registry. Engines are named by import path so
reading the registry never imports torch; `load_engine` imports and loads on first use, once per
process.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass

from gpu.engine import Engine
from gpu.errors import EngineNotFound


@dataclass(frozen=True)
class EngineSpec:
    """One engine: its name, the job kinds it serves, its class, and the GPU it wants."""

    name: str
    kinds: tuple[str, ...]
    target: str
    gpu: str | None = None
    preview: bool = False
    description: str = ""
    license: str = ""
    max_render_seconds: int | None = None
    """Longest render the engine's most generous profile allows (sizes the Modal timeout)."""


ENGINES: dict[str, EngineSpec] = {}
_loaded: dict[str, Engine] = {}
_lock = threading.Lock()


def register(spec: EngineSpec) -> EngineSpec:
    ENGINES[spec.name] = spec
    return spec


def get_spec(name: str) -> EngineSpec:
    _ensure_builtin()
    try:
        return ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise EngineNotFound(f"no engine named {name!r}; known engines: {known}") from None


def load_engine(name: str) -> Engine:
    """The loaded engine `name`, created and loaded once per process."""
    spec = get_spec(name)
    with _lock:
        engine = _loaded.get(name)
        if engine is None:
            module_name, _, attr = spec.target.partition(":")
            engine = getattr(importlib.import_module(module_name), attr)()
            engine.load()
            _loaded[name] = engine
        return engine


def _ensure_builtin() -> None:
    importlib.import_module("gpu.builtin")
