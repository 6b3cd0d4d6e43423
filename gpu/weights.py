"""Model weights: declared once per engine, pulled by one function, found offline at render time.

Each engine's `EngineSpec.weights` lists its `WeightSource`s: a Hugging Face repo at a pinned
revision, the file patterns its loader opens, which profiles need it and about how big it is.
`pull` is the only code that downloads: `dropreel weights pull ENGINE [--profile P]` runs it on
this machine, and `--modal` runs the very same call inside a Modal container whose settings point
at the weights Volume. A source lands either in the Hugging Face cache (`DROPREEL_HF_CACHE_DIR`,
else the Hugging Face default; diffusers-layout repos, resolved by repo id + revision) or, when
it names a `folder`, in `<DROPREEL_WEIGHTS_DIR>/<folder>/` as plain files (the talking-head
engine reads the published files from there). A folder source may also name a `store` step: the
download then lands in a staging folder and the step writes what the loader reads (for example
the same tensors, under the same names, in the dtype the engine runs), once per revision.

Render never touches the network: `locate` only looks on disk and raises `WeightsMissing` naming
the command that fixes it. huggingface_hub is imported inside the functions so the watcher
never needs it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu.errors import EngineError, WeightsMissing

if TYPE_CHECKING:
    from gpu.registry import EngineSpec

log = logging.getLogger(__name__)

ALIASES = {"talking-head": "infinitetalk"}
"""Other names `dropreel weights` accepts for an engine."""


class WeightsPullFailed(EngineError):
    """A download from the Hugging Face Hub failed; the message says which repo and what to check."""

    permanent = True


class UnknownProfile(EngineError):
    """A profile named on the command line that the engine does not have."""

    permanent = True


@dataclass(frozen=True, kw_only=True)
class WeightSource:
    """One Hugging Face repo (or the part of it a loader opens) that an engine reads."""

    repo_id: str
    revision: str | None
    """The pinned 40-hex commit; None where no commit could be confirmed (pulls `main`)."""
    patterns: tuple[str, ...]
    """The files the loader opens (`allow_patterns`); nothing else is downloaded."""
    size_gb: float
    """About how much a pull downloads, for planning disk and time."""
    profiles: tuple[str, ...] | None = None
    """The profiles (for a speech engine: the languages) that need this source; None: all."""
    folder: str | None = None
    """Where it lives under DROPREEL_WEIGHTS_DIR; None: the Hugging Face cache."""
    name: str = ""
    license: str = ""
    note: str = ""
    convert: str | None = None
    """`module:function` run once after the whole pull, given this source and the Places (a
    conversion of the makers' format, which may read several sources, into the layout the
    loader reads)."""
    store: Callable[[Path, Path], None] | None = None
    """For a folder source: `store(download, folder)` writes what the loader reads from this
    source's published files in `download` (deleting them as it goes), once per revision;
    None: the download is it."""

    @property
    def label(self) -> str:
        return self.name or self.repo_id

    @property
    def ref(self) -> str:
        return self.revision or "main"

    def needed_by(self, profiles: Sequence[str] | None) -> bool:
        return self.profiles is None or not profiles or bool(set(profiles) & set(self.profiles))

    def markers(self) -> list[str]:
        """The patterns naming one exact file: a complete copy on disk has each of them."""
        return [p for p in self.patterns if not any(c in p for c in "*?[")]


@dataclass(frozen=True)
class Places:
    """Where weights go on this machine: the Hugging Face cache and the plain-folder root."""

    cache_dir: str | None = None
    weights_dir: str | None = None

    @classmethod
    def from_settings(
        cls, cache_dir: str | Path | None = None, weights_dir: str | Path | None = None
    ) -> Places:
        """Arguments first, then DROPREEL_HF_CACHE_DIR / DROPREEL_WEIGHTS_DIR."""
        from config.settings import get_settings

        settings = get_settings()
        cache = cache_dir if cache_dir is not None else settings.hf_cache_dir
        root = weights_dir if weights_dir is not None else settings.weights_dir
        return cls(str(cache) if cache else None, str(Path(root).expanduser()))

    def folder(self, source: WeightSource) -> Path:
        return Path(self.weights_dir or ".").expanduser() / str(source.folder)

    def where(self, source: WeightSource) -> str:
        if source.folder:
            return str(self.folder(source))
        return self.cache_dir or "the default Hugging Face cache"


def pull_command(engine: str, profile: str | None = None) -> str:
    return f"dropreel weights pull {engine}" + (f" --profile {profile}" if profile else "")


def engine_spec(name: str) -> EngineSpec:
    """The registered engine `name` (or one of its ALIASES)."""
    from gpu.registry import get_spec

    return get_spec(ALIASES.get(name, name))


def sources_for(spec: EngineSpec, profiles: Sequence[str] | None = None) -> list[WeightSource]:
    """The sources the given profiles need (every source when none is named)."""
    known = [*spec.profiles, *sorted({p for s in spec.weights for p in s.profiles or ()})]
    unknown = [p for p in profiles or () if p not in known]
    if unknown:
        have = ", ".join(known) or "none"
        raise UnknownProfile(f"{spec.name} has no profile {', '.join(unknown)}; it has {have}")
    return [s for s in spec.weights if s.needed_by(profiles)]


def pull(
    spec: EngineSpec,
    profiles: Sequence[str] | None = None,
    places: Places | None = None,
    after_each: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Download what `profiles` of `spec` need; returns what was fetched, as plain data, with
    the size each repository takes on disk. `after_each` is called with each repository's
    record once it is complete (on Modal: commit the Volume, so a later failure keeps it)."""
    places = places or Places.from_settings()
    sources = sources_for(spec, profiles)
    result: dict[str, Any] = {"engine": spec.name, "profiles": list(profiles or []), "repos": []}
    if not spec.weights:
        result["message"] = f"engine {spec.name!r} has no weights to pull"
        return result
    for source in sources:
        path = _fetch(spec, source, places)
        record = {
            "name": source.label,
            "repo": source.repo_id,
            "revision": source.ref,
            "patterns": list(source.patterns),
            "size_gb": source.size_gb,
            "disk_gb": disk_gb(Path(path)),
            "path": str(path),
        }
        log.info("pulled %s: %s GB on disk", source.repo_id, record["disk_gb"])
        if after_each is not None:
            after_each(record)
        result["repos"].append(record)
    for source in sources:
        if source.convert:
            result.setdefault("converted", []).append(str(_run_conversion(source, places)))
    total = round(sum(r["disk_gb"] for r in result["repos"]), 3)
    result["disk_gb"] = total
    result["message"] = (
        f"pulled {len(sources)} repositories for {spec.name} ({total:g} GB on disk) "
        f"into {', '.join(sorted({places.where(s) for s in sources}))}"
    )
    log.info("%s", result["message"])
    return result


STORED = ".dropreel-stored.json"
"""Written last by a `store` step's pull: the repo and revision the folder was made from."""


def _fetch(spec: EngineSpec, source: WeightSource, places: Places) -> Path:
    """Download one source (then run its `store` step); returns the folder the loader reads."""
    from huggingface_hub import snapshot_download

    if source.revision is None:
        log.warning("%s is not pinned; fetching its current main", source.repo_id)
    folder = places.folder(source) if source.folder else None
    stamp = {"repo": source.repo_id, "revision": source.ref}
    if (
        source.store is not None
        and folder is not None
        and _stored(folder) == stamp
        and all((folder / m).exists() for m in source.markers())
    ):
        log.info("%s at %s is already stored in %s", source.repo_id, source.ref, folder)
        return folder
    target = folder
    if source.store is not None and folder is not None:
        target = folder.with_name(folder.name + ".download")
    where = {"local_dir": str(target)} if target is not None else {}
    log.info("pulling %s at %s into %s", source.repo_id, source.ref, places.where(source))
    try:
        path = snapshot_download(
            repo_id=source.repo_id,
            revision=source.ref,
            allow_patterns=list(source.patterns),
            cache_dir=places.cache_dir,
            **where,
        )
    except Exception as err:  # hub errors are many types; say which repo and what to check
        first = str(err).splitlines()[0] if str(err) else ""
        raise WeightsPullFailed(
            f"could not download {source.repo_id} at {source.ref} for {spec.name} "
            f"({type(err).__name__}: {first}): check the network, the repo id and revision, "
            "and HF_TOKEN if the repo is gated (on Modal: the dropreel-huggingface Secret)"
        ) from err
    if source.store is None or folder is None:
        return Path(path)
    import shutil

    log.info("storing %s from %s into %s", source.repo_id, target, folder)
    (folder / STORED).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    source.store(Path(path), folder)
    (folder / STORED).write_text(json.dumps(stamp))
    shutil.rmtree(Path(path), ignore_errors=True)
    return folder


def _stored(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STORED).read_text())
    except (OSError, ValueError):
        return None


def cast_shards(download: Path, folder: Path, dtype: str, keep_fp32: Callable[[str], bool]) -> None:
    """A `store` step: every `*.safetensors` file in `download` rewritten into `folder` with its
    floating tensors in `dtype` (those `keep_fp32(name)` names in float32), same names, same
    files; other files copied. Each published file is deleted once written, so the disk holds
    the download plus one converted file at most. Files the loader finds first are written last.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    want = getattr(torch, dtype)
    shards = sorted(download.rglob("*.safetensors"))
    others = [f for f in sorted(download.rglob("*")) if f.is_file() and f not in shards]
    for shard in shards:
        out = folder / shard.relative_to(download)
        out.parent.mkdir(parents=True, exist_ok=True)
        tensors = {}
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                tensor = f.get_tensor(key)
                if tensor.is_floating_point():
                    tensor = tensor.to(torch.float32 if keep_fp32(key) else want)
                tensors[key] = tensor.contiguous()
        partial = out.with_name(out.name + ".partial")
        save_file(tensors, str(partial), metadata={"format": "pt"})
        partial.replace(out)
        shard.unlink()
    for other in others:
        if ".cache" in other.relative_to(download).parts:
            continue
        out = folder / other.relative_to(download)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(other.read_bytes())


def disk_gb(folder: Path) -> float:
    """What the files under `folder` take, in GB (a cache snapshot's links count as their
    blobs); 0 for a folder that is not there."""
    if not folder.is_dir():
        return 0.0
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e9, 3)


def _run_conversion(source: WeightSource, places: Places) -> Path:
    from importlib import import_module

    module, _, function = str(source.convert).partition(":")
    log.info("converting %s into the layout its loader reads", source.label)
    return getattr(import_module(module), function)(source, places)


def locate(
    source: WeightSource,
    places: Places,
    fix: str,
    what: str | None = None,
    marker: str | None = None,
) -> Path:
    """The folder holding `source` on this machine, offline; WeightsMissing naming `fix` if not.

    Complete means: the folder (or cached snapshot), each file a pattern names exactly, and
    `marker` (a file or folder the caller reads first) all exist.
    """
    what = what or f"the weights {source.repo_id} at {source.ref}"
    markers = [*source.markers(), *([marker] if marker else [])]
    if source.folder:
        path = places.folder(source)
        missing = [m for m in ["", *markers] if not (path / m).exists()]
        if missing:
            raise WeightsMissing(
                f"{what} are not in {path} (missing {Path(missing[0]).name or path.name}): run "
                f"`{fix}` on a machine with network access, or set DROPREEL_WEIGHTS_DIR to "
                "where they are"
            )
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = Path(
            snapshot_download(
                source.repo_id,
                revision=source.ref,
                cache_dir=places.cache_dir,
                local_files_only=True,
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError) as err:
        raise WeightsMissing(
            f"{what} are not in {places.where(source)}: run `{fix}` on a machine that reaches "
            "huggingface.co with the same DROPREEL_HF_CACHE_DIR (on Modal: the weights volume)"
        ) from err
    missing = [m for m in markers if not (path / m).exists()]
    if missing:
        raise WeightsMissing(
            f"the cached snapshot of {source.repo_id} at {path} has no {missing[0]} "
            f"(an interrupted download?): run `{fix}` again"
        )
    return path


@dataclass(frozen=True)
class Snapshot:
    """A Hugging Face cache source resolved on disk: its folder and the commit it holds."""

    repo: WeightSource
    path: Path

    @property
    def commit(self) -> str:
        return self.path.name


def default_cache_dir() -> str | None:
    """The configured cache directory, or None for the Hugging Face default (HF_HUB_CACHE)."""
    return Places.from_settings().cache_dir


def local_snapshot(
    repo: WeightSource, cache_dir: str | Path | None, engine: str, profile: str | None = None
) -> Snapshot:
    """The cached snapshot of `repo`, offline; WeightsMissing with the fixing command if absent."""
    places = Places(cache_dir=str(cache_dir) if cache_dir else None)
    what = f"the weights of {engine} ({repo.repo_id} at {repo.ref})"
    return Snapshot(repo, locate(repo, places, pull_command(engine, profile), what))


def inventory(spec: EngineSpec, places: Places) -> list[dict[str, Any]]:
    """Each source of `spec`, where it belongs and whether it is on disk (`weights list`)."""
    rows = []
    for source in spec.weights:
        try:
            path, present = str(locate(source, places, pull_command(spec.name))), True
        except WeightsMissing:
            path, present = places.where(source), False
        rows.append(
            {
                "engine": spec.name,
                "name": source.label,
                "repo": source.repo_id,
                "revision": source.revision or "main (unpinned)",
                "profiles": list(source.profiles) if source.profiles else "all",
                "size_gb": source.size_gb,
                "license": source.license or spec.license,
                "present": present,
                "path": path,
            }
        )
    if not rows:
        rows.append({"engine": spec.name, "name": "(no weights needed)", "present": True})
    return rows
