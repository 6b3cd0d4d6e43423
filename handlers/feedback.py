"""Feedback on folders whose files make no job: said once, in words, after a grace period.

An image waiting for its audio, two portraits beside one recording, an iPhone photo: without a
word the user waits for a video that never comes. Once the newest of the files concerned is
`incomplete_grace_seconds` old (they may still be uploading), the would-be job gets a
status.json in state "incomplete" whose error says what to do, and one notification.

Deciding is a pure function of the listing (`notices`); acting (`announce`) happens once per
situation: `.dropreel/<stem>/<version>.incomplete` is created with a conditional write (one
winner among pollers) and its presence in the listing keeps later ticks quiet at no cost. The
version is a hash of the files concerned, so a changed situation is told again. A would-be job
whose name has finished before (its inputs were deleted since) is left quiet.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers import layout
from handlers.errors import PreconditionFailed, first_line
from handlers.jobs import Job, Phase, version_of
from handlers.notify import JobEvent
from handlers.runtime import Runtime
from handlers.status import JobState, JobStatus, write_status
from handlers.storage import ObjectInfo

log = logging.getLogger(__name__)

NOTICE = "incomplete"  # <version>.incomplete: this situation was reported

# Types people drop that dropreel cannot read, and what to do instead. One table: a type that
# becomes an input (in handlers/layout.py) must leave it.
UNSUPPORTED: dict[str, str] = {
    "heic": "an iPhone photo (HEIC), which dropreel cannot read: export it as JPEG or PNG",
    "heif": "an iPhone photo (HEIF), which dropreel cannot read: export it as JPEG or PNG",
    "avif": "an AVIF image, which dropreel cannot read: save it as PNG or JPEG",
    "gif": "a GIF, which dropreel does not take: save one frame as PNG or JPEG",
    "bmp": "a BMP image, which dropreel does not take: save it as PNG or JPEG",
    "tif": "a TIFF image, which dropreel does not take: save it as PNG or JPEG",
    "tiff": "a TIFF image, which dropreel does not take: save it as PNG or JPEG",
    "aac": "raw AAC audio, which dropreel does not take: save it as .m4a, .mp3 or .wav",
    "aif": "an AIFF recording, which dropreel does not take: save it as .wav or .mp3",
    "aiff": "an AIFF recording, which dropreel does not take: save it as .wav or .mp3",
    "wma": "a WMA recording, which dropreel does not take: save it as .mp3 or .wav",
    "amr": "a phone voice memo (AMR), which dropreel does not take: save it as .mp3 or .wav",
    "caf": "a Core Audio file (CAF), which dropreel does not take: save it as .wav or .m4a",
}
_AUDIO = ", ".join(f".{ext}" for ext in sorted(layout.AUDIO_EXTS))
_IMAGES = ", ".join(f".{ext}" for ext in sorted(layout.IMAGE_EXTS))


@dataclass(frozen=True)
class Notice:
    """One situation to report: the would-be job's folder and stem, its files, what to do."""

    folder: str
    stem: str
    files: tuple[ObjectInfo, ...]
    message: str

    @property
    def version(self) -> str:
        return version_of(self.files)

    @property
    def key(self) -> str:
        return f"{layout.meta_prefix(self.folder, self.stem)}{self.version}.{NOTICE}"


def notices(
    jobs: list[Job], objects: Iterable[ObjectInfo], now: datetime, grace_seconds: float
) -> list[Notice]:
    """What to report about this listing now: situations past the grace period not yet told."""
    told, odd = set(), defaultdict(list)
    for obj in objects:
        if layout.is_reserved(obj.key):
            if obj.key.endswith(f".{NOTICE}"):
                told.add(obj.key)
        elif layout.is_safe_key(obj.key):
            folder, name = layout.split_key(obj.key)
            if name.rpartition(".")[2].lower() in UNSUPPORTED and not name.startswith("."):
                odd[folder].append(obj)
    by_folder: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_folder[job.folder].append(job)
    found: list[Notice] = []
    for folder in sorted(set(by_folder) | set(odd)):
        found.extend(_folder_notices(folder, by_folder[folder], odd[folder]))
    grace = timedelta(seconds=grace_seconds)
    return [
        n
        for n in found
        if n.key not in told and max(o.last_modified for o in n.files) + grace <= now
    ]


def _folder_notices(folder: str, jobs: list[Job], odd: list[ObjectInfo]) -> list[Notice]:
    waiting = [j for j in jobs if j.phase is Phase.INCOMPLETE and not j.markers]
    images = [j for j in waiting if j.image]
    others = [j for j in waiting if not j.image]
    stems = {j.stem for j in jobs}
    found: list[Notice] = []
    if images and any(j.audio for j in others):
        audios = [j for j in others if j.audio]
        files = [j.image for j in images] + [j.audio for j in audios]
        found.append(
            Notice(
                folder,
                audios[0].stem,
                tuple(files),  # type: ignore[arg-type]
                f"{_names(files)} are in one folder and no audio is named like an image, so "
                "dropreel cannot tell which audio goes with which image: name each audio like "
                "its image (bob.png + bob.mp3), or put each image and its audio in a folder of "
                "their own",
            )
        )
        images, others = [], [j for j in others if not j.audio]
    for job in images:
        name = _name(job.image)  # type: ignore[arg-type]
        found.append(
            Notice(
                folder,
                job.stem,
                tuple(job.inputs),
                f"{name} has no audio: add {job.stem}.mp3 (or {_AUDIO}) for a talking head, "
                f"{job.stem}.script.txt for one that speaks a text, or a prompt.json to animate "
                "it",
            )
        )
    for job in others:
        found.append(
            Notice(
                folder,
                job.stem,
                tuple(job.inputs),
                f"{_names(job.inputs)} has no image: add a portrait {job.stem}.png (or {_IMAGES}) "
                "beside it",
            )
        )
    for obj in odd:
        stem, _, ext = _name(obj).rpartition(".")
        what = f"{_name(obj)} is {UNSUPPORTED[ext.lower()]}"
        same = next((n for n in found if n.stem == stem), None)
        if same is not None:  # the missing part, in a type dropreel cannot read
            found[found.index(same)] = Notice(
                folder, stem, (*same.files, obj), f"{same.message}; {what}"
            )
        elif stem not in stems:  # beside a job that works it is just another file
            found.append(Notice(folder, stem, (obj,), what))
    return found


def _name(obj: ObjectInfo) -> str:
    return layout.split_key(obj.key)[1]


def _names(objects: Iterable[ObjectInfo]) -> str:
    names = [_name(o) for o in objects]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def announce(
    rt: Runtime, jobs: list[Job], objects: Sequence[ObjectInfo], now: datetime, errors: list[str]
) -> None:
    """Report each situation `notices` finds, once: status.json, then one notification."""
    found = notices(jobs, objects, now, rt.settings.incomplete_grace_seconds)
    for notice in found:
        name = f"{notice.folder}{notice.stem}"
        try:
            _announce(rt, notice, name)
        except Exception as err:  # one folder's trouble never stops the tick for the others
            log.error("%s: feedback skipped this tick: %s", name[:200], first_line(err))
            errors.append(name)


def _announce(rt: Runtime, notice: Notice, name: str) -> None:
    try:
        rt.storage.put_if_absent(notice.key, notice.message.encode(), "text/plain")
    except PreconditionFailed:
        return  # another poller told it
    keys = [o.key for o in notice.files]
    status = JobStatus(
        state=JobState.INCOMPLETE,
        job=name,
        version=notice.version,
        inputs=keys,
        error=notice.message,
        fix_by="user",
    )
    status_key = layout.status_key(notice.folder, notice.stem)
    write_status(rt.storage, status_key, status)
    event = JobEvent(
        status=status.model_copy(deep=True),
        folder=notice.folder,
        inputs=[rt.storage.describe(k) for k in keys],
    )
    try:
        rt.notifier.notify(event)
        status.notification = "sent"
    except Exception as err:  # a notifier must never fail the tick
        log.error("notification for %s failed: %s", name, first_line(err))
        status.notification = f"failed: {first_line(err)}"
    write_status(rt.storage, status_key, status)
    log.info("%s: cannot make a job: %s", name, notice.message)
