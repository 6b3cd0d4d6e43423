"""Where things live in a job folder: input types by extension, reserved names for outputs.

Everything dropreel writes besides the MP4 sits under `<folder>/.dropreel/<stem>/`, a name that
can never be taken for an input (no input type has that shape). Job state is carried by key
names there, so a poller decides from the listing alone:

    <folder>/<stem>.mp4                         the video; <stem>.dropreel.mp4 when a file of the
                                                user's already has that name (a dubbing job's
                                                own source video, a take.mp4 of theirs)
    <folder>/<stem>.speech.wav                  the speech made from a script (script jobs)
    <folder>/.dropreel/<stem>/status.json       human-readable status (queued/running/done/failed)
    <folder>/.dropreel/<stem>/poster.jpg        poster frame
    <folder>/.dropreel/<stem>/<version>.lease   claim; its LastModified is the last heartbeat;
                                                final without a marker: the unsent notification
                                                (outbox); beside a marker: kept a while, so a
                                                claim from an older listing fails
    <folder>/.dropreel/<stem>/<version>.done    finished and announced (once per version)
    <folder>/.dropreel/<stem>/<version>.failed  failed for good (exactly once per version)
    <folder>/.dropreel/<stem>/<version>.cancelled  cancelled by the user (handlers/control.py)
    <folder>/.dropreel/<stem>/writing-<version>.json  written just before dropreel writes
                                                <stem>.mp4; deleted once the version is done
    <folder>/.dropreel/<stem>/made-<etag>.json  written just after: the video's key and ETag

A finished job keeps what its user reads (the video, status.json, the poster) and what keeps it
finished and its video out of the inputs (the done marker, made-<etag>.json): five keys. The
lease goes at a look ten minutes after the marker (handlers/claims.py, "kept lease"), the
writing record once the version is done (the made
record, written before the lease turned final, names the video from then on), and the folder's
active-index entry at its next look. The writing record is per version, so a render of an older
version that finishes late never removes the record of a newer one still writing its video.

Videos are inputs too (dubbing), so a video dropreel wrote must never be taken for one, and a
user's file must never be overwritten:
- `<stem>.mp4` is dropreel's when a writing record of its stem is not newer than it (so a
  crash between the two writes changes nothing); any other `<stem>.mp4` is the user's, and the
  video goes to `<stem>.dropreel.mp4` instead (a `<stem>.mp4` the user drops after the job is
  done, having deleted dropreel's, is theirs: no writing record is left to claim it);
- a video whose ETag a `made-<etag>.json` record in its folder names is dropreel's whatever it
  is called
  now (a rename keeps the ETag on S3, R2 and the local backend);
- `<stem>.dropreel.<video ext>` is always dropreel's;
- a video named like an image beside it belongs to that image's job (its output, or a file of
  the user's that dropreel leaves alone), and a video alone, with no audio, is not a job.

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
VIDEO_EXTS = frozenset({"mp4", "mov", "webm", "mkv"})
OUTPUT_TAG = "dropreel"  # <stem>.dropreel.mp4: a video dropreel wrote, never an input
MADE_PREFIX, MADE_SUFFIX = "made-", ".json"  # .dropreel/<stem>/made-<etag>.json: a video we wrote
WRITING_PREFIX = "writing-"  # .dropreel/<stem>/writing-<version>.json: before <stem>.mp4
WRITING_LEGACY = "writing.json"  # the same record from before it was per version
PROMPT_NAME = "prompt.json"
PROMPT_SUFFIX = ".prompt.json"
FOLDER_PROMPT_STEM = "prompt"
MAX_KEY_BYTES = 1024  # S3's limit on a key's length, in UTF-8 bytes; both backends enforce it
SHORT_STEM_CHARS = 32
SCRIPT_NAME = "script.txt"
SCRIPT_SUFFIX = ".script.txt"
VOICE_TAG = "voice"  # <stem>.voice.<audio ext>: a voice sample to speak in, never lip-synced
SPEAKER_TAGS = ("speaker1", "speaker2")  # <stem>.speaker1.wav + .speaker2.wav: two speakers
SPEECH_TAG = "speech"  # <stem>.speech.wav: the speech dropreel made, never an input


class Marker(StrEnum):
    """The per-version marker files; their key names carry a job's state."""

    LEASE = "lease"  # claimed; LastModified is the last heartbeat; final: outcome decided
    DONE = "done"  # finished, exactly once
    FAILED = "failed"  # failed for good, exactly once
    CANCELLED = "cancelled"  # cancelled by the user (a `<stem>.cancel` file), exactly once


MARKERS = frozenset(Marker)


def split_key(key: str) -> tuple[str, str]:
    """'a/b/c.png' -> ('a/b/', 'c.png')."""
    folder, _, name = key.rpartition("/")
    return (folder + "/" if folder else ""), name


def input_type(name: str) -> tuple[str, str] | None:
    """('image'|'audio'|'voice'|'speaker1'|'speaker2'|'video'|'prompt'|'script', stem) for an
    input file name, else None.

    A folder-level prompt.json or script.txt has stem ''. Hidden files (leading '.') are never
    inputs, and neither are `<stem>.speech.<audio ext>` (the speech dropreel writes) and
    `<stem>.dropreel.<video ext>` (a video dropreel wrote).
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
        tag = _tag(stem)
        if tag == SPEECH_TAG:
            return None
        if tag == VOICE_TAG or tag in SPEAKER_TAGS:
            return tag, stem.rpartition(".")[0]
        return "audio", stem
    if ext in VIDEO_EXTS:
        return None if _tag(stem) == OUTPUT_TAG else ("video", stem)
    return None


def may_be_output(name: str) -> bool:
    """True for a name dropreel's own videos can have (`*.mp4`). A bucket event for one cannot
    tell an output from a user's MP4 without a listing, so the webhook leaves such events to the
    poller (an MP4 dubbing source that lands after its audio waits for the next tick)."""
    return name.lower().endswith(".mp4")


def _tag(stem: str) -> str:
    """'take.dropreel' -> 'dropreel': the last dotted part of a stem, lower case ('' if none)."""
    base, dot, tag = stem.rpartition(".")
    return tag.lower() if dot and base else ""


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


def output_key(folder: str, stem: str, taken: bool = False) -> str:
    """`<stem>.mp4`, or `<stem>.dropreel.mp4` when a file of the user's has the first name."""
    return f"{folder}{stem}.{OUTPUT_TAG}.mp4" if taken else f"{folder}{stem}.mp4"


def writing_key(folder: str, stem: str, version: str) -> str:
    return f"{meta_prefix(folder, stem)}{WRITING_PREFIX}{version}.json"


def is_writing(name: str) -> bool:
    """True for a record that dropreel began writing `<stem>.mp4` (see writing_key)."""
    return name == WRITING_LEGACY or (name.startswith(WRITING_PREFIX) and name.endswith(".json"))


def made_key(folder: str, stem: str, etag: str) -> str:
    return f"{meta_prefix(folder, stem)}{MADE_PREFIX}{bare_etag(etag)}{MADE_SUFFIX}"


def made_etag(name: str) -> str | None:
    """The ETag a `made-<etag>.json` record names, else None."""
    if name.startswith(MADE_PREFIX) and name.endswith(MADE_SUFFIX):
        return name[len(MADE_PREFIX) : -len(MADE_SUFFIX)] or None
    return None


def bare_etag(etag: str) -> str:
    """An ETag without its quotes, as listings and PUT answers both give it here."""
    return etag.strip('"')


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
