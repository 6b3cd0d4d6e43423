"""Where things live in a job folder: input types by extension, reserved names for outputs.

Everything dropreel writes besides the MP4 sits under `<folder>/.dropreel/<stem>/`, a name that
can never be taken for an input (no input type has that shape). Job state is carried by key
names there, so a poller decides from the listing alone:

    <folder>/<stem>.mp4                         the video
    <folder>/<stem>.speech.wav                  the speech made from a script (script jobs)
    <folder>/.dropreel/<stem>/status.json       human-readable status (queued/running/done/failed)
    <folder>/.dropreel/<stem>/poster.jpg        poster frame
    <folder>/.dropreel/<stem>/<version>.lease   claim; its LastModified is the last heartbeat;
                                                once final, the unsent notification (outbox)
    <folder>/.dropreel/<stem>/<version>.done    finished (exactly once per version)
    <folder>/.dropreel/<stem>/<version>.failed  failed for good (exactly once per version)

Beside the job folders, the watch root holds `.dropreel-index/`: the active index, which says
which folders a poller tick must look at and when (handlers/active.py).

A stem so long that these keys would pass the store's key limit is refused; its status.json and
failed marker go under a short name instead: `<first 32 characters of the stem>~<hash>`.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

META_DIR = ".dropreel"
INDEX_DIR = ".dropreel-index/"  # at the watch root: the active index (handlers/active.py)
TMP_PREFIX = ".dropreel-tmp/"  # at the watch root: the local backend's staged writes
IMAGE_EXTS = frozenset({"png", "jpg", "jpeg", "webp"})
AUDIO_EXTS = frozenset({"wav", "mp3", "m4a", "flac", "ogg", "opus"})
PROMPT_NAME = "prompt.json"
PROMPT_SUFFIX = ".prompt.json"
FOLDER_PROMPT_STEM = "prompt"
MAX_KEY_BYTES = 1024  # S3's limit on a key's length, in UTF-8 bytes; both backends enforce it
SHORT_STEM_CHARS = 32
SCRIPT_NAME = "script.txt"
SCRIPT_SUFFIX = ".script.txt"
VOICE_TAG = "voice"  # <stem>.voice.<audio ext>: a voice sample to speak in, never lip-synced
SPEECH_TAG = "speech"  # <stem>.speech.wav: the speech dropreel made, never an input


class Marker(StrEnum):
    """The per-version marker files; their key names carry a job's state."""

    LEASE = "lease"  # claimed; LastModified is the last heartbeat; final: outcome decided
    DONE = "done"  # finished, exactly once
    FAILED = "failed"  # failed for good, exactly once


MARKERS = frozenset(Marker)


def split_key(key: str) -> tuple[str, str]:
    """'a/b/c.png' -> ('a/b/', 'c.png')."""
    folder, _, name = key.rpartition("/")
    return (folder + "/" if folder else ""), name


def input_type(name: str) -> tuple[str, str] | None:
    """('image'|'audio'|'voice'|'prompt'|'script', stem) for an input file name, else None.

    A folder-level prompt.json or script.txt has stem ''. Hidden files (leading '.') are never
    inputs, and neither is `<stem>.speech.<audio ext>`: that is the speech dropreel writes.
    """
    if name.startswith("."):
        return None
    lower = name.lower()
    for kind, whole, suffix in (
        ("prompt", PROMPT_NAME, PROMPT_SUFFIX),
        ("script", SCRIPT_NAME, SCRIPT_SUFFIX),
    ):
        if lower == whole:
            return kind, ""
        if lower.endswith(suffix) and len(name) > len(suffix):
            return kind, name[: -len(suffix)]
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return None
    ext = ext.lower()
    if ext in IMAGE_EXTS:
        return "image", stem
    if ext in AUDIO_EXTS:
        base, dot, tag = stem.rpartition(".")
        tag = tag.lower() if dot and base else ""
        if tag == SPEECH_TAG:
            return None
        return ("voice", base) if tag == VOICE_TAG else ("audio", stem)
    return None


def is_safe_key(key: str) -> bool:
    """False for keys no backend may touch ('..', '.', empty segments, backslash, NUL).

    S3 allows such keys, but they could mean another folder on a local disk or to another
    tool, so dropreel never treats them as inputs (nor writes anything next to them).
    """
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        return False
    return all(part not in ("", ".", "..") for part in key.split("/"))


def meta_root(folder: str) -> str:
    """The folder under which all of `folder`'s jobs keep their metadata."""
    return f"{folder}{META_DIR}/"


def meta_prefix(folder: str, stem: str) -> str:
    return f"{meta_root(folder)}{stem}/"


def short_meta_stem(stem: str) -> str:
    """The metadata folder name of a job whose stem is too long for its own: readable (it
    starts like the stem) and unique (a hash of the whole stem)."""
    digest = hashlib.sha256(stem.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{stem[:SHORT_STEM_CHARS]}~{digest}"


def output_key(folder: str, stem: str) -> str:
    return f"{folder}{stem}.mp4"


def speech_key(folder: str, stem: str) -> str:
    return f"{folder}{stem}.{SPEECH_TAG}.wav"


def status_key(folder: str, stem: str) -> str:
    return meta_prefix(folder, stem) + "status.json"


def poster_key(folder: str, stem: str) -> str:
    return meta_prefix(folder, stem) + "poster.jpg"


def marker_key(folder: str, stem: str, version: str, marker: Marker) -> str:
    return f"{meta_prefix(folder, stem)}{version}.{marker}"


def parse_meta(key: str) -> tuple[str, str, str] | None:
    """(folder, stem, file) for a key under a .dropreel/ folder, else None."""
    marker_at = key.find(f"{META_DIR}/")
    while marker_at != -1:
        if marker_at == 0 or key[marker_at - 1] == "/":
            folder = key[:marker_at]
            rest = key[marker_at + len(META_DIR) + 1 :]
            stem, _, name = rest.rpartition("/")
            return folder, stem, name
        marker_at = key.find(f"{META_DIR}/", marker_at + 1)
    return None


def is_reserved(key: str) -> bool:
    """True for anything dropreel writes itself (metadata and temp files)."""
    return f"/{META_DIR}/" in f"/{key}" or key.startswith((TMP_PREFIX, INDEX_DIR))
