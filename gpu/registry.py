"""Engine registration as data: every fact about an engine, in one record per engine.

An `EngineSpec` holds what an engine serves (job kinds), where its class lives, its GPU, licence,
longest render, profiles and weight sources. Routing, the Modal app, `dropreel weights` and
tests all read this registry; the diffusers engines register their `ModelSpec` (an EngineSpec
with the model's rules) directly, so no fact is written twice. Engines are named by import path so
reading the registry never imports torch; `load_engine` imports and loads on first use, once per
process.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.extras import install_hint
from gpu.engine import Engine
from gpu.errors import EngineNotFound, EngineSetupError
from gpu.weights import WeightSource


@dataclass(frozen=True)
class EngineSpec:
    """One engine: its name, the job kinds it serves, its class, its GPU, licence and limits."""

    name: str
    kinds: tuple[str, ...]
    target: str
    gpu: str | None = None
    gpu_fallbacks: tuple[str, ...] = ()
    """GPUs that also serve, in order, when Modal has no `gpu` free (each holds gpu_memory_gib)."""
    gpu_memory_gib: int | None = None
    """GPU memory the most demanding profile needs, from the makers' figures or parameter
    counts (docs/DEPLOY.md cites each; not measured here). The deploy plan checks each GPU."""
    preview: bool = False
    description: str = ""
    license: str = ""
    license_url: str = ""
    max_render_seconds: int | None = None
    """Longest render the engine's most generous profile allows (sizes the Modal timeout)."""
    profiles: Mapping[str, Any] = field(default_factory=dict)
    """Profile name -> the engine's own profile record (speed/quality trade-offs)."""
    weights: tuple[WeightSource, ...] = ()
    """What `dropreel weights pull` fetches and the loader opens (gpu/weights.py)."""
    segments: bool = False
    """Its one-voice talking heads may be cut at pauses and rendered as segments on many
    workers, then joined (handlers/segments.py); False: always one continuous render."""


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
            engine = engine_class(spec)()
            try:
                engine.load()
            except ImportError as err:  # engines import torch and friends lazily
                raise _setup_error(spec, err) from None
            _loaded[name] = engine
        return engine


def adopt(name: str, engine: Engine) -> None:
    """Make an engine loaded elsewhere (before a Modal memory snapshot) the one `load_engine`
    returns for `name`."""
    with _lock:
        _loaded[name] = engine


def engine_class(spec: EngineSpec) -> type[Engine]:
    """Import the engine's class; a package missing on this machine is the operator's move
    (EngineSetupError, never retried), named with the extra that installs it."""
    module_name, _, attr = spec.target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except ImportError as err:
        raise _setup_error(spec, err) from None


def _setup_error(spec: EngineSpec, err: ImportError) -> EngineSetupError:
    missing = (err.name or "").partition(".")[0] or "a package"
    return EngineSetupError(spec.name, missing, install_hint(missing))


def _ensure_builtin() -> None:
    importlib.import_module("gpu.builtin")
