"""Input checks that run before any engine loads: sizes, images, audio, prompt fields.

Sizes are checked from the listing before a byte is downloaded; images are fully decoded (under
the pixel limit) and audio fully probed (up to the duration limit), so a broken file is refused
in seconds instead of after a GPU engine has loaded. This is the only place inputs are decoded:
the decoded image and the audio facts go to the engine on the RenderRequest, so every engine
works under the configured limits. Every refusal is an InputRejected (permanent, never retried)
whose message names the file and says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from config.kinds import JobKind
from config.settings import Settings
from gpu.errors import InputError
from gpu.media import AudioInfo, VideoInfo, load_image, probe_audio, probe_video
from gpu.speech.script import MAX_SCRIPT_CHARS
from handlers import layout
from handlers.errors import InputRejected
from handlers.prompt import PromptFile
from handlers.storage import ObjectInfo

if TYPE_CHECKING:
    from handlers.jobs import Job

MAX_SCRIPT_BYTES = 4 * MAX_SCRIPT_CHARS  # UTF-8 takes at most four bytes a character


def check_sizes(objects: list[ObjectInfo], settings: Settings) -> None:
    """Refuse empty and oversized inputs from their listed sizes (nothing downloaded yet)."""
    for obj in objects:
        name = _file(obj)
        typed = layout.input_type(name)
        if obj.size == 0:
            raise InputRejected(f"{name} is empty (0 bytes): upload it again")
        if typed and typed[0] == "prompt" and obj.size > settings.max_prompt_bytes:
            raise InputRejected(
                f"{name} is {obj.size:,} bytes; a prompt file may be at most "
                f"{settings.max_prompt_bytes:,} bytes: keep only the fields it needs"
            )
        if typed and typed[0] == "script" and obj.size > MAX_SCRIPT_BYTES:
            raise InputRejected(
                f"{name} is {obj.size:,} bytes; a script may be at most {MAX_SCRIPT_CHARS:,} "
                "characters: split it into several scripts"
            )
        if obj.size > settings.max_input_bytes:
            raise InputRejected(
                f"{name} is {obj.size / 1e6:.1f} MB, over the {settings.max_input_bytes / 1e6:.0f} MB "
                "input limit: make it smaller"
            )


def image(path: Path, settings: Settings, name: str | None = None) -> Image.Image:
    """Decode the whole image once, to RGB: bombs, truncation, wrong formats are refused here."""
    try:
        return load_image(path, settings.max_image_pixels)
    except InputError as err:
        raise InputRejected(_renamed(str(err), path, name)) from err


def audio(path: Path, settings: Settings, name: str | None = None) -> AudioInfo:
    """Probe the audio (decoding at most the duration limit): its length, rate and level."""
    try:
        return probe_audio(path, settings.max_audio_seconds, settings.min_audio_seconds)
    except InputError as err:
        raise InputRejected(_renamed(str(err), path, name)) from err


def video(path: Path, settings: Settings, name: str | None = None) -> VideoInfo:
    """Probe the source video (decoding at most the duration limit): size, rate, frames."""
    try:
        return probe_video(path, settings.max_video_seconds, settings.max_video_pixels)
    except InputError as err:
        raise InputRejected(_renamed(str(err), path, name)) from err


def check_pairing(job: Job) -> None:
    """An image beside several audio files, none named like it, cannot be paired: say how."""
    if not job.unpaired or job.image is None:
        return
    image = _file(job.image)
    names = [_file(obj) for obj in job.unpaired]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    raise InputRejected(
        f"{image} has {len(names)} audio files beside it ({shown}) and none is named like it, "
        f"so dropreel cannot tell which one to use: name the audio for this image "
        f"{job.stem}.{names[0].rpartition('.')[2]} (the same name as the image), or put each "
        "image and its audio in a folder of their own"
    )


def _file(obj: ObjectInfo) -> str:
    return obj.key.rpartition("/")[2]


def check_prompt(kind: str | None, prompt: PromptFile | None, name: str) -> None:
    """Jobs made from a prompt need a prompt text; say so before anything loads."""
    if kind in (JobKind.TEXT_TO_VIDEO, JobKind.IMAGE_TO_VIDEO) and (
        prompt is None or not prompt.prompt
    ):
        raise InputRejected(
            f'{name} has no "prompt": a {kind} job needs one, e.g. '
            '{"prompt": "a paper boat drifting down a rainy street"}'
        )


def check_speech(job: Job, prompt: PromptFile | None) -> None:
    """A portrait speaks a recording, a script or two speakers' recordings, never two of them;
    voice fields need a script."""
    script = _name(job.script) if job.script else ('the "speech" field of prompt.json')
    if job.two_speakers and (job.audio or job.speaks):
        other = _name(job.audio) if job.audio else script
        raise InputRejected(
            f"{other} and {_name(job.speaker1)} + {_name(job.speaker2)} both give the speech of "
            f"the portrait {job.stem!r}: keep the two speakers' recordings or the other, not both"
        )
    if job.speaks and job.audio:
        raise InputRejected(
            f"{_name(job.audio)} is a recording and {script} a script for the same portrait "
            f"{job.stem!r}: remove one of them"
        )
    if job.speaks and job.image is None:
        raise InputRejected(
            f"{script} gives text to speak, but there is no portrait to speak it: add an image "
            "(png, jpg, webp) to the folder, or remove the speech field"
        )
    if job.script and job.speech_in_prompt:
        raise InputRejected(
            f'{_name(job.script)} and the "speech" field of prompt.json both give the text to '
            "speak: keep one"
        )
    if job.voice and not job.speaks:
        raise InputRejected(
            f"{_name(job.voice)} is a voice sample for a script, but {job.stem!r} has no script: "
            f"add {job.stem}.script.txt, or rename the file if it is the recording to lip-sync"
        )
    for field in ("voice", "language"):
        if prompt and getattr(prompt, field) and not job.speaks:
            raise InputRejected(
                f'prompt.json sets "{field}", which only a script job uses: add a script '
                '(script.txt or a "speech" field) or remove the field'
            )


def script(path: Path, name: str) -> str:
    """The script's text: UTF-8, not binary, not empty."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputRejected(
            f"{name} is not UTF-8 text (byte {err.start}): save it as plain UTF-8 text"
        ) from err
    if "\x00" in text:
        raise InputRejected(f"{name} holds binary data, not text: save the script as plain text")
    if not text.strip():
        raise InputRejected(f"{name} is empty: write the words to speak in it")
    return text


def _name(obj: ObjectInfo) -> str:
    return obj.key.rpartition("/")[2]


def _renamed(message: str, path: Path, name: str | None) -> str:
    """Messages from gpu/ name the local temp file; put the user's file name back."""
    if name and path.name != name and message.startswith(path.name):
        return name + message[len(path.name) :]
    return message
