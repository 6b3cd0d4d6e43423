"""Input checks that run before any engine loads: sizes, image pixels, audio length.

Every refusal is an InputRejected (permanent, never retried) whose message names the file.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from config.settings import Settings
from gpu.errors import InputError
from gpu.media import audio_seconds
from handlers.errors import InputRejected
from handlers.storage import ObjectInfo


def check_sizes(objects: list[ObjectInfo], settings: Settings) -> None:
    for obj in objects:
        name = obj.key.rpartition("/")[2]
        if obj.size == 0:
            raise InputRejected(f"{name} is empty (0 bytes): upload it again")
        if obj.size > settings.max_input_bytes:
            raise InputRejected(
                f"{name} is {obj.size / 1e6:.1f} MB, over the {settings.max_input_bytes / 1e6:.0f} MB "
                "input limit: make it smaller"
            )


def check_image(path: Path, settings: Settings) -> None:
    """Read only the header: refuse huge images before decoding a single pixel."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception as err:
        raise InputRejected(
            f"{path.name} is not a readable image ({type(err).__name__}): upload a PNG, JPEG or WebP"
        ) from err
    if width * height > settings.max_image_pixels:
        raise InputRejected(
            f"{path.name} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{settings.max_image_pixels:,}: downscale it and upload it again"
        )


def check_audio(path: Path, settings: Settings) -> float:
    try:
        seconds = audio_seconds(path)
    except InputError as err:
        raise InputRejected(str(err)) from err
    if seconds > settings.max_audio_seconds:
        raise InputRejected(
            f"{path.name} is {seconds / 60:.1f} minutes long; the limit is "
            f"{settings.max_audio_seconds / 60:.1f} minutes: cut it into shorter parts"
        )
    return seconds
