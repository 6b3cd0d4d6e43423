"""Model weights an engine needs, and pulling them into the Hugging Face cache.

An engine declares its weights as `weights` on its EngineSpec or its engine class: a sequence of
"org/repo", "org/repo@revision", or `WeightsRef`. `pull` downloads them with huggingface_hub
into the cache that HF_HOME names: on Modal, the `dropreel-weights` Volume; locally, ~/.cache.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from gpu.registry import get_spec
from handlers.errors import DropreelError


class WeightsPullFailed(DropreelError):
    """The weights could not be downloaded; the message says from where and why."""


@dataclass(frozen=True)
class WeightsRef:
    """One Hugging Face repository at a pinned revision."""

    repo_id: str
    revision: str | None = None
    allow_patterns: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, value: Any) -> WeightsRef:
        if isinstance(value, WeightsRef):
            return value
        if isinstance(value, str):
            repo, _, revision = value.partition("@")
            return cls(repo, revision or None)
        repo = getattr(value, "repo_id", None)
        if repo is None:
            raise ValueError(f"cannot read weights entry {value!r}: use 'org/repo@revision'")
        patterns = getattr(value, "allow_patterns", None)
        return cls(repo, getattr(value, "revision", None), tuple(patterns) if patterns else None)


def weights_for(engine: str) -> tuple[WeightsRef, ...]:
    from gpu.diffusers_models import MODELS

    if engine in MODELS:
        return tuple(WeightsRef.parse(repo) for repo in MODELS[engine].repos)
    spec = get_spec(engine)
    refs = getattr(spec, "weights", None)
    if refs is None:
        module, _, attr = spec.target.partition(":")
        refs = getattr(getattr(importlib.import_module(module), attr), "weights", ())
    return tuple(WeightsRef.parse(r) for r in refs or ())


# Engines that keep their weights in their own folder layout (DROPREEL_WEIGHTS_DIR) rather than
# the Hugging Face cache: user-facing name -> module with pull(root, include_optional).
WEIGHT_SETS: dict[str, str] = {
    "talking-head": "gpu.infinitetalk.weights",
    "infinitetalk": "gpu.infinitetalk.weights",
}


def pull(engine: str, cache_dir: str | None = None) -> dict[str, Any]:
    """Download `engine`'s weights; returns what was fetched (paths, revisions)."""
    if engine in WEIGHT_SETS:
        module = importlib.import_module(WEIGHT_SETS[engine])
        pulled = module.pull(None, include_optional=True)
        repos = [
            {"repo": spec.repo, "revision": rev, "path": str(path)} for spec, path, rev in pulled
        ]
        return {
            "engine": engine,
            "repos": repos,
            "message": f"pulled {len(repos)} sets for {engine}",
        }
    refs = weights_for(engine)
    result: dict[str, Any] = {"engine": engine, "repos": []}
    if not refs:
        result["message"] = f"engine {engine!r} has no weights to pull"
        return result
    from huggingface_hub import snapshot_download

    for ref in refs:
        try:
            path = snapshot_download(
                repo_id=ref.repo_id,
                revision=ref.revision,
                allow_patterns=list(ref.allow_patterns) if ref.allow_patterns else None,
                cache_dir=cache_dir,
            )
        except Exception as err:
            raise WeightsPullFailed(
                f"could not download {ref.repo_id}@{ref.revision or 'main'} for {engine}: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} (gated "
                "models need HF_TOKEN: on Modal, the dropreel-huggingface Secret)"
            ) from err
        result["repos"].append({"repo": ref.repo_id, "revision": ref.revision, "path": path})
    result["message"] = f"pulled {len(refs)} repositories for {engine}"
    return result
