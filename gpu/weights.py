"""Model weights: pulled once into a Hugging Face cache, loaded from it offline at render time.

`dropreel weights pull ENGINE` downloads an engine's repos (at the revisions named in
`gpu/diffusers_models.py`) into the cache directory (`DROPREEL_HF_CACHE_DIR`, else the
Hugging Face default; on Modal a Volume). Render resolves repo id + revision to a snapshot folder
with `local_files_only=True`, the same resolution huggingface_hub does online, so it never
touches the network; a missing snapshot raises `WeightsMissing` naming the command that fixes it.
huggingface_hub is imported inside the functions so the watcher never needs it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gpu.diffusers_models import ModelSpec, Repo
from gpu.errors import EngineError, WeightsMissing

log = logging.getLogger(__name__)

DIFFUSERS_LAYOUT = ["model_index.json", "*/*"]
"""What a pull fetches: the diffusers layout only (model_index.json and component folders),
never the single-file checkpoints some repos also hold at their top level."""


class WeightsPullFailed(EngineError):
    """A download from the Hugging Face Hub failed; the message says what to check."""

    permanent = True


@dataclass(frozen=True)
class Snapshot:
    """A repo resolved in the local cache: its folder and the commit it holds."""

    repo: Repo
    path: Path

    @property
    def commit(self) -> str:
        return self.path.name


def default_cache_dir() -> str | None:
    """The configured cache directory, or None for the Hugging Face default (HF_HUB_CACHE)."""
    from config.settings import get_settings

    return get_settings().hf_cache_dir


def pull_command(engine: str, profile: str | None = None) -> str:
    return f"dropreel weights pull {engine}" + (f" --profile {profile}" if profile else "")


def local_snapshot(
    repo: Repo, cache_dir: str | Path | None, engine: str, profile: str | None = None
) -> Snapshot:
    """The cached snapshot of `repo`, offline; WeightsMissing with the fixing command if absent."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(
            repo.repo_id,
            revision=repo.revision,
            cache_dir=str(cache_dir) if cache_dir else None,
            local_files_only=True,
        )
    except (LocalEntryNotFoundError, FileNotFoundError) as err:
        where = str(cache_dir) if cache_dir else "the default Hugging Face cache"
        raise WeightsMissing(
            f"the weights of {engine} ({repo.repo_id} at {repo.revision}) are not in {where}: "
            f"run `{pull_command(engine, profile)}` on a machine that reaches huggingface.co "
            "with the same DROPREEL_HF_CACHE_DIR (on Modal: the weights volume)"
        ) from err
    snapshot = Snapshot(repo, Path(path))
    if not (snapshot.path / "model_index.json").is_file():
        raise WeightsMissing(
            f"the cached snapshot of {repo.repo_id} at {snapshot.path} has no model_index.json "
            f"(an interrupted download?): run `{pull_command(engine, profile)}` again"
        )
    return snapshot


def repos_for(spec: ModelSpec, profiles: list[str] | None = None) -> list[Repo]:
    """The repos that serve the given profiles (all of them when None), each once."""
    if not profiles:
        return spec.repos
    unknown = [p for p in profiles if p not in spec.profiles]
    if unknown:
        raise ValueError(
            f"{spec.name} has no profile {', '.join(unknown)}; it has {', '.join(spec.profiles)}"
        )
    seen: dict[str, Repo] = {}
    for profile in profiles:
        for kind in spec.kinds:
            repo = spec.variant_for(profile, kind).repo
            seen.setdefault(f"{repo.repo_id}@{repo.revision}", repo)
    return list(seen.values())


def pull(
    spec: ModelSpec,
    profiles: list[str] | None = None,
    cache_dir: str | Path | None = None,
    token: str | None = None,
) -> list[Snapshot]:
    """Download the repos of `spec` (for `profiles`) into the cache; returns their snapshots."""
    from huggingface_hub import snapshot_download

    snapshots = []
    for repo in repos_for(spec, profiles):
        log.info("pulling %s at %s", repo.repo_id, repo.revision)
        try:
            path = snapshot_download(
                repo.repo_id,
                revision=repo.revision,
                cache_dir=str(cache_dir) if cache_dir else None,
                token=token,
                allow_patterns=DIFFUSERS_LAYOUT,
            )
        except Exception as err:  # hub errors are many types; say which repo and what to check
            raise WeightsPullFailed(
                f"could not download {repo.repo_id} at {repo.revision} "
                f"({type(err).__name__}): check the network, the repo id and revision, and "
                "HF_TOKEN if the repo is gated"
            ) from err
        snapshots.append(Snapshot(repo, Path(path)))
    return snapshots
