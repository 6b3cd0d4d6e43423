"""Jobs from one listing: pairing by folder and stem, routing, version, readiness and state.

This is the whole decision of a poller tick, made from key names, ETags and LastModified alone:
no GET or HEAD is needed to know that a job is finished, running, or waiting.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from config.kinds import JobKind
from handlers import layout
from handlers.layout import Marker
from handlers.status import JobState
from handlers.storage import ObjectInfo


class Phase(StrEnum):
    """What a tick needs to know of a job; `Phase.state` is the word people see for it."""

    INCOMPLETE = "incomplete"  # a part is missing (an image waiting for its audio or prompt)
    SETTLING = "settling"  # complete, but the newest input is younger than the settle window
    READY = "ready"  # complete and settled, not claimed
    RUNNING = "running"  # claimed, lease fresh
    EXPIRED = "expired"  # claimed, lease expired: a worker died; the next tick takes it back
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the user cancelled this version (handlers/control.py)

    @property
    def state(self) -> JobState:
        return _STATE_OF[self]

    @property
    def decided(self) -> bool:
        """The version has its done, failed or cancelled marker: finished and announced."""
        return self in (Phase.DONE, Phase.FAILED, Phase.CANCELLED)


_STATE_OF = {
    Phase.INCOMPLETE: JobState.INCOMPLETE,
    Phase.SETTLING: JobState.QUEUED,
    Phase.READY: JobState.QUEUED,
    Phase.RUNNING: JobState.RUNNING,
    Phase.EXPIRED: JobState.RUNNING,  # its status.json still says running until taken back
    Phase.DONE: JobState.DONE,
    Phase.FAILED: JobState.FAILED,
    Phase.CANCELLED: JobState.CANCELLED,
}


@dataclass
class Job:
    """One job: a folder, a stem, its input objects, and what the listing says of its state."""

    folder: str
    stem: str
    image: ObjectInfo | None = None
    video: ObjectInfo | None = None  # a dubbing job's source video
    audio: ObjectInfo | None = None
    prompt: ObjectInfo | None = None
    unpaired: list[ObjectInfo] = field(default_factory=list)  # audios this image cannot pair
    script: ObjectInfo | None = None  # script.txt / <stem>.script.txt: speech made from text
    voice: ObjectInfo | None = None  # <stem>.voice.<ext>: the voice a script is spoken in
    speaker1: ObjectInfo | None = None  # <stem>.speaker1.<ext>: two speakers (gpu/two_speakers)
    speaker2: ObjectInfo | None = None  # <stem>.speaker2.<ext>
    speech_in_prompt: bool = False  # prompt.json has a "speech" field (known once it is read)
    markers: dict[str, dict[Marker, ObjectInfo]] = field(default_factory=dict)
    phase: Phase = Phase.INCOMPLETE
    ready_at: datetime | None = None
    meta_name: str | None = None  # set when the stem is too long to name its metadata folder
    output_taken: bool = False  # a file of the user's is called <stem>.mp4 (layout.output_key)

    @property
    def meta_stem(self) -> str:
        """The name of this job's folder under .dropreel/ (see layout.short_meta_stem)."""
        return self.meta_name or self.stem

    @property
    def name(self) -> str:
        return f"{self.folder}{self.stem}"

    @property
    def kind(self) -> JobKind | None:
        if self.video and self.audio:
            return JobKind.DUBBING
        if self.image and (
            self.audio or self.unpaired or self.speaks or self.two_speakers
        ):  # unpaired: refused when routed
            return JobKind.TALKING_HEAD
        if self.prompt and self.image:
            return JobKind.IMAGE_TO_VIDEO
        if self.prompt and not self.audio and not self.image:
            return JobKind.TEXT_TO_VIDEO
        return None

    @property
    def two_speakers(self) -> bool:
        """Both speakers' recordings are here (one portrait, two voices)."""
        return self.speaker1 is not None and self.speaker2 is not None

    @property
    def speaks(self) -> bool:
        """True when dropreel makes the speech first: from a script file or prompt.json."""
        return self.script is not None or self.speech_in_prompt

    @property
    def inputs(self) -> list[ObjectInfo]:
        slots = (
            self.image,
            self.video,
            self.audio,
            self.prompt,
            self.script,
            self.voice,
            self.speaker1,
            self.speaker2,
            *self.unpaired,
        )
        return [obj for obj in slots if obj is not None]

    @property
    def version(self) -> str:
        """Changes whenever any input is replaced (new ETag)."""
        return version_of(self.inputs)

    @property
    def newest_input(self) -> datetime | None:
        return max((o.last_modified for o in self.inputs), default=None)

    def marker(self, marker: Marker) -> ObjectInfo | None:
        return self.markers.get(self.version, {}).get(marker)

    @property
    def output_key(self) -> str:
        return layout.output_key(self.folder, self.stem, self.output_taken)

    @property
    def speech_key(self) -> str:
        return layout.speech_key(self.folder, self.stem)

    @property
    def status_key(self) -> str:
        return layout.status_key(self.folder, self.meta_stem)

    @property
    def poster_key(self) -> str:
        return layout.poster_key(self.folder, self.meta_stem)

    def marker_key(self, marker: Marker, version: str | None = None) -> str:
        return layout.marker_key(self.folder, self.meta_stem, version or self.version, marker)

    def metadata_keys(self) -> list[str]:
        """Every key dropreel may write for this version besides the MP4."""
        return [
            self.status_key,
            self.poster_key,
            *(self.marker_key(m) for m in Marker),
            layout.made_key(self.folder, self.meta_stem, "0" * 32),  # an MD5 ETag's length
        ]

    def stale_marker_keys(self) -> list[str]:
        """Markers of earlier versions, safe to delete once this version is done."""
        return [
            obj.key
            for version, markers in self.markers.items()
            if version != self.version
            for obj in markers.values()
        ]


def version_of(objects: Iterable[ObjectInfo]) -> str:
    """A hash of the objects' keys and ETags: a job version, the same whatever their order."""
    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: o.key):
        digest.update(f"{obj.key}\0{obj.etag}\n".encode())
    return digest.hexdigest()[:16]


def discover(
    objects: Iterable[ObjectInfo],
    now: datetime,
    settle_seconds: float,
    lease_seconds: float,
) -> list[Job]:
    """All jobs in a listing, each with its state as of `now` (the storage server's clock)."""
    inputs: dict[str, list[tuple[str, str, ObjectInfo]]] = defaultdict(list)
    metas: dict[tuple[str, str], dict[str, dict[Marker, ObjectInfo]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    made: dict[str, set[str]] = defaultdict(set)  # folder -> ETags of videos dropreel wrote
    writing: dict[str, datetime] = {}  # folder + stem -> when dropreel began writing its mp4
    for obj in objects:
        key = obj.key
        if layout.is_reserved(key):
            meta = layout.parse_meta(key)
            if meta:
                folder, stem, name = meta
                version, _, marker = name.rpartition(".")
                if marker in layout.MARKERS and version:
                    metas[(folder, stem)][version][Marker(marker)] = obj
                elif layout.is_writing(name):  # several (a render cut off): the earliest
                    began = writing.get(folder + stem, obj.last_modified)
                    writing[folder + stem] = min(began, obj.last_modified)
                elif etag := layout.made_etag(name):
                    made[folder].add(etag)
            continue
        if not layout.is_safe_key(key):
            continue  # '..' and friends: never an input (see layout.is_safe_key)
        folder, name = layout.split_key(key)
        typed = layout.input_type(name)
        if typed:
            inputs[folder].append((typed[0], typed[1], obj))

    jobs: list[Job] = []
    settle = timedelta(seconds=settle_seconds)
    lease = timedelta(seconds=lease_seconds)
    for folder, items in inputs.items():
        made_here = made.get(folder, set())
        items = [
            (kind, stem, obj)
            for kind, stem, obj in items
            if kind != "video" or not _ours(obj, made_here, writing.get(folder + stem))
        ]
        theirs = {obj.key.rpartition("/")[2].lower() for kind, _, obj in items if kind == "video"}
        paired = _pair(folder, items)
        for job in paired:
            job.output_taken = f"{job.stem}.mp4".lower() in theirs
            job.markers = metas.get((folder, job.stem), {})
            if not job.markers and len(job.stem) > layout.SHORT_STEM_CHARS:
                short = layout.short_meta_stem(job.stem)
                if (folder, short) in metas:  # a refused long stem (see layout.short_meta_stem)
                    job.meta_name, job.markers = short, metas[(folder, short)]
        for job in _keep_decided_pairs(paired):
            job.phase, job.ready_at = _phase(job, now, settle, lease)
            jobs.append(job)
    jobs.sort(key=lambda j: j.name)
    return jobs


def _ours(video: ObjectInfo, made: set[str], began: datetime | None) -> bool:
    """A video dropreel wrote (see handlers/layout.py), whatever happened to it since: its ETag
    is recorded, or it is the <stem>.mp4 dropreel began writing before this one landed."""
    if layout.bare_etag(video.etag) in made:
        return True
    return began is not None and video.key.endswith(".mp4") and began <= video.last_modified


def _pair(folder: str, items: list[tuple[str, str, ObjectInfo]]) -> list[Job]:
    images = [(stem, obj) for kind, stem, obj in items if kind == "image"]
    named_like_images = {stem for stem, _ in images}  # a video there is the image job's business
    videos = [
        (stem, obj)
        for kind, stem, obj in items
        if kind == "video" and stem not in named_like_images
    ]
    audios = [(stem, obj) for kind, stem, obj in items if kind == "audio"]
    folder_prompt = next((obj for kind, stem, obj in items if kind == "prompt" and not stem), None)
    folder_script = next((obj for kind, stem, obj in items if kind == "script" and not stem), None)
    by_stem: dict[str, Job] = {}

    def job_for(stem: str) -> Job:
        return by_stem.setdefault(stem, Job(folder=folder, stem=stem))

    pictures = images + videos
    lone_pair = len(pictures) == 1 and len(audios) == 1
    for stem, obj in images:
        _keep_newest(job_for(stem), "image", obj)
    for stem, obj in videos:
        _keep_newest(job_for(stem), "video", obj)
    for stem, obj in audios:
        target = pictures[0][0] if lone_pair else stem
        _keep_newest(job_for(target), "audio", obj)
    for kind, stem, obj in items:
        if kind in ("prompt", "script", "voice", *layout.SPEAKER_TAGS) and stem:
            setattr(job_for(stem), kind, obj)
    if folder_script is not None:  # speaks for every portrait without its own recording
        for stem, _ in images:
            job = job_for(stem)
            if job.script is None and job.audio is None:
                job.script = folder_script
    for stem, job in list(by_stem.items()):  # a video alone is not a job (nor any output)
        if job.video and len(job.inputs) == 1:
            del by_stem[stem]
    if folder_prompt is not None:
        if images or audios:
            for job in by_stem.values():
                if job.prompt is None:
                    job.prompt = folder_prompt
        elif layout.FOLDER_PROMPT_STEM not in by_stem:  # beside other prompts: a job of its own
            job_for(layout.FOLDER_PROMPT_STEM).prompt = folder_prompt
    _hold_unpaired(by_stem, images)
    return list(by_stem.values())


def _hold_unpaired(by_stem: dict[str, Job], images: list[tuple[str, ObjectInfo]]) -> None:
    """One image that no audio or prompt pairs with, beside several lone audios: no way to
    tell which audio the user meant, so the image's job holds them all and is refused in
    words (validate.check_pairing) instead of every file waiting silently, incomplete."""
    if len(images) != 1:
        return
    job = by_stem[images[0][0]]
    lone = [j for j in by_stem.values() if j.audio and not (j.image or j.video or j.prompt)]
    if job.kind is None and len(lone) > 1:
        for other in lone:
            del by_stem[other.stem]
        job.unpaired = sorted((j.audio for j in lone), key=lambda o: o.key)  # type: ignore[misc]


def _keep_decided_pairs(jobs: list[Job]) -> list[Job]:
    """An image paired with an audio whatever their names keeps that audio once the pair was a
    job (a version of it has a marker), even when files added beside it now make the folder
    pair by name: a finished job never turns back into an incomplete one."""
    lone = {j.audio.key: j for j in jobs if j.audio and not j.image and not j.prompt}
    for job in jobs:
        if job.image is None or job.audio is not None or not job.markers:
            continue
        for audio in [*(j.audio for j in lone.values()), *job.unpaired]:
            if replace(job, audio=audio, unpaired=[]).version in job.markers:
                job.audio, held = audio, job.unpaired
                job.unpaired = []
                for other in held:  # the audios it held wait for images of their own again
                    if other is not audio:
                        stem = layout.input_type(layout.split_key(other.key)[1])[1]  # type: ignore[index]
                        jobs.append(Job(job.folder, stem, audio=other))
                lone.pop(audio.key, None)
                break
    kept = {id(j.audio) for j in jobs if j.image and j.audio}
    return [j for j in jobs if j.image or j.audio is None or id(j.audio) not in kept]


def _keep_newest(job: Job, slot: str, obj: ObjectInfo) -> None:
    current = getattr(job, slot)
    if current is None or (obj.last_modified, obj.key) > (current.last_modified, current.key):
        setattr(job, slot, obj)


def _phase(
    job: Job, now: datetime, settle: timedelta, lease: timedelta
) -> tuple[Phase, datetime | None]:
    markers = job.markers.get(job.version, {})
    if Marker.DONE in markers:
        return Phase.DONE, None
    if Marker.FAILED in markers:
        return Phase.FAILED, None
    if Marker.CANCELLED in markers:
        return Phase.CANCELLED, None
    if job.kind is None:
        return Phase.INCOMPLETE, None
    if Marker.LEASE in markers:
        fresh = markers[Marker.LEASE].last_modified + lease > now
        return (Phase.RUNNING if fresh else Phase.EXPIRED), None
    ready_at = job.newest_input + settle  # type: ignore[operator]
    return (Phase.READY if ready_at <= now else Phase.SETTLING), ready_at
