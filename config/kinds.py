"""The job kinds: what a set of dropped files asks for.

Kinds live in `config/` because every layer names them: the listing decides a job's kind
(handlers), settings map each kind to its default engine (config), engines declare the kinds
they make (gpu). A StrEnum, so a kind is written to status.json, Slack and tickets as its plain
word and compares equal to it.
"""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    TALKING_HEAD = "talking_head"  # image + audio
    DUBBING = "dubbing"  # video + audio: the person in the video speaks the audio
    TEXT_TO_VIDEO = "text_to_video"  # prompt.json alone
    IMAGE_TO_VIDEO = "image_to_video"  # prompt.json + image
