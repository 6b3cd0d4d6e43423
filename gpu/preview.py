"""The preview engine: real MP4s on CPU with no weights, through the same interface as GPU engines.

talking_head: the still image with a slow zoom over the full audio (25 fps); with two speakers,
over their mix, and status.json shows where each speaker is and how they take the floor.
dubbing: the source video's own frames, at its size and frame rate, over the new audio, as long
as the audio (the dubbing length rule: `gpu/dubbing.py`).
text_to_video / image_to_video: a short animated card showing the prompt (over the image if any).
Every output is marked as a preview in status.json and in the notification.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gpu.dubbing import length_adjustments, source_index
from gpu.engine import Progress, RenderPlan, RenderRequest
from gpu.errors import InputError
from gpu.media import even_size, fit_cover
from gpu.two_speakers import DEFAULT_SPEAKING, Speaking, speaker_boxes

TALKING_FPS = 25
CARD_FPS = 24
LONGEST_SIDE = 512
CARD_SIZE = (512, 288)
DEFAULT_CARD_SECONDS = 3.0
MAX_CARD_SECONDS = 20.0
STAMP_BITS = 8  # segment numbers 0-255 (parallel talking heads, handlers/segments.py)


@dataclass(kw_only=True)
class PreviewPlan(RenderPlan):
    """A preview: the image to show (talking head: as uploaded; card: cropped to size)."""

    image: Image.Image | None
    two_speakers: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "engine": PreviewEngine.name,
            "preview": True,
            **self.two_speakers,
            **super().describe(),
        }


class PreviewEngine:
    """A CPU engine with no weights; see the module docstring."""

    name = "preview"
    preview = True

    def load(self) -> None:
        """Nothing to load: the preview engine has no weights."""

    def check_inputs(self, request: RenderRequest) -> PreviewPlan:
        adjustments: list[str] = []
        image = request.image
        if request.kind == "dubbing":
            return self._dubbing_plan(request)
        if request.kind == "talking_head":
            if image is None or request.audio is None or not request.audio.seconds:
                raise InputError("a talking-head job needs an image and a non-empty audio file")
            width, height = even_size(*image.size, LONGEST_SIDE)
            fps = TALKING_FPS
            num_frames = max(1, math.ceil(request.audio.seconds * fps - 1e-6))
            if request.width or request.height:
                adjustments.append(
                    f"size {_asked(request)} ignored: the talking-head preview keeps the "
                    f"image's shape, {width}x{height}"
                )
            if request.fps and request.fps != fps:
                adjustments.append(
                    f"fps {request.fps} ignored: the talking-head preview runs at {fps} fps"
                )
        else:
            if not request.prompt:
                raise InputError('prompt.json needs a non-empty "prompt" for this job')
            fps = request.fps or CARD_FPS
            width, height = self._card_size(request, image, adjustments)
            seconds = request.duration_seconds or DEFAULT_CARD_SECONDS
            if seconds > MAX_CARD_SECONDS:
                adjustments.append(
                    f"duration {seconds}s capped to {MAX_CARD_SECONDS}s for a preview"
                )
                seconds = MAX_CARD_SECONDS
            num_frames = max(1, round(seconds * fps))
        two: dict[str, Any] = {}
        if request.voices and image is not None:
            boxes = speaker_boxes(request.speakers, image.width, image.height)
            two = {
                "speakers": [list(b) for b in boxes],
                "speaking": Speaking(request.speaking or DEFAULT_SPEAKING),
            }
        if image is not None and image.size != (width, height):
            image = fit_cover(image, width, height) if request.kind != "talking_head" else image
        return PreviewPlan(
            two_speakers=two,
            request=request,
            width=width,
            height=height,
            fps=fps,
            num_frames=num_frames,
            seed=request.seed or 0,
            adjustments=adjustments,
            image=image,
        )

    def _dubbing_plan(self, request: RenderRequest) -> PreviewPlan:
        video, audio = request.video, request.audio
        if video is None or audio is None or not audio.seconds:
            raise InputError("a dubbing job needs a video and a non-empty audio file")
        width, height = video.width // 2 * 2, video.height // 2 * 2  # H.264 needs even sides
        adjustments = length_adjustments(video, audio.seconds)
        if (width, height) != (video.width, video.height):
            adjustments.append(
                f"{video.name} is {video.width}x{video.height}: the odd edge row or column is "
                f"dropped ({width}x{height}), as H.264 video needs even sides"
            )
        return PreviewPlan(
            request=request,
            width=width,
            height=height,
            fps=video.fps,
            num_frames=max(1, math.ceil(audio.seconds * video.fps - 1e-6)),
            seed=request.seed or 0,
            adjustments=adjustments,
            image=None,
        )

    def _card_size(
        self, request: RenderRequest, image: Image.Image | None, adjustments: list[str]
    ) -> tuple[int, int]:
        if request.width and request.height:
            width, height = even_size(
                request.width, request.height, max(request.width, request.height)
            )
            if (width, height) != (request.width, request.height):
                adjustments.append(
                    f"size {request.width}x{request.height} snapped to {width}x{height}"
                )
            if max(width, height) > 1024:
                width, height = even_size(width, height, 1024)
                adjustments.append(f"preview size reduced to {width}x{height}")
            return width, height
        width, height = even_size(*image.size, LONGEST_SIDE) if image is not None else CARD_SIZE
        if request.width or request.height:
            adjustments.append(
                f"size {_asked(request)} ignored: give both width and height; the preview "
                f"made {width}x{height}"
            )
        return width, height

    def longest_seconds(self, request: RenderRequest) -> float | None:
        """The longest clip: a card is at most MAX_CARD_SECONDS (longer videos are made clip
        after clip, handlers/long_clips.py); a talking head or dubbing follows its audio."""
        return MAX_CARD_SECONDS if request.kind in ("text_to_video", "image_to_video") else None

    def render(self, plan: PreviewPlan, progress: Progress | None = None) -> Iterator[np.ndarray]:
        kind = plan.request.kind
        if kind == "dubbing":
            frames = self._dubbing(plan)
        elif kind == "talking_head":
            frames = self._talking(plan)
        else:
            frames = self._card(plan)
        segment = plan.request.segment
        for index, frame in enumerate(frames, 1):
            yield frame if segment is None else stamp_segment(frame, segment)
            if progress:
                progress(index, plan.num_frames)

    def _talking(self, plan: PreviewPlan) -> Iterator[np.ndarray]:
        image = plan.image  # check_inputs refuses a talking head without one
        src_w, src_h = image.size
        size = (plan.width, plan.height)
        # a source many times the frame size is box-reduced once, not resampled whole per frame
        step = max(1, min(src_w // plan.width, src_h // plan.height) // 2)
        small = image.reduce(step) if step > 1 else image
        for i in range(plan.num_frames):
            t = i / plan.fps
            zoom = 1.04 + 0.04 * (1 - math.cos(t * 0.6)) + 0.004 * math.sin(t * 5.0)
            cw, ch = src_w / zoom, src_h / zoom
            cx = src_w / 2 + 0.01 * src_w * math.sin(t * 0.9)
            cy = src_h / 2 + 0.01 * src_h * math.sin(t * 0.7)
            cx = min(max(cx, cw / 2), src_w - cw / 2)
            cy = min(max(cy, ch / 2), src_h - ch / 2)
            box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
            box = tuple(edge / step for edge in box)
            yield np.asarray(small.resize(size, Image.Resampling.BILINEAR, box=box))

    def _dubbing(self, plan: PreviewPlan) -> Iterator[np.ndarray]:
        video = plan.request.video
        indices = (source_index(i, video.fps, video.fps) for i in range(plan.num_frames))
        for frame in video.frames_at(indices):
            yield frame[: plan.height, : plan.width]

    def _card(self, plan: PreviewPlan) -> Iterator[np.ndarray]:
        width, height = plan.width, plan.height
        if plan.image is not None:
            base = plan.image.copy()
        else:
            y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
            top, bottom = np.array([24, 32, 64]), np.array([96, 40, 120])
            grad = (top * (1 - y) + bottom * y) * np.ones((1, width, 1))
            base = Image.fromarray(grad.astype(np.uint8))
        draw = ImageDraw.Draw(base, "RGBA")
        font = ImageFont.load_default(size=max(12, height // 16))
        chars = max(12, int(width / (height / 16 * 0.55)))
        text = "\n".join(textwrap.wrap(plan.request.prompt or "", chars)[:6])
        draw.rectangle((0, int(height * 0.55), width, height), fill=(0, 0, 0, 140))
        draw.multiline_text(
            (width * 0.05, height * 0.6), text, font=font, fill=(255, 255, 255, 255)
        )
        draw.text(
            (width * 0.05, height * 0.06), "dropreel preview", font=font, fill=(255, 210, 80, 255)
        )
        card = np.asarray(base)
        bar_h = max(2, height // 60)
        for i in range(plan.num_frames):
            frame = card.copy()
            filled = int(width * (i + 1) / plan.num_frames)
            frame[height - bar_h :, :filled] = (255, 210, 80)
            yield frame


def stamp_segment(frame: np.ndarray, segment: int) -> np.ndarray:
    """A parallel render's segment number along the top edge, in STAMP_BITS black or white
    blocks (lowest bit first), so a joined preview shows which segment each frame came from."""
    frame = frame.copy()
    height, width = frame.shape[:2]
    block_w, block_h = width // STAMP_BITS, max(2, height // 16)
    for bit in range(STAMP_BITS):
        frame[:block_h, bit * block_w : (bit + 1) * block_w] = 255 * (segment >> bit & 1)
    return frame


def read_segment_stamp(frame: np.ndarray) -> int:
    """The segment number `stamp_segment` drew on a (decoded) frame."""
    height, width = frame.shape[:2]
    block_w, block_h = width // STAMP_BITS, max(2, height // 16)
    return sum(
        (frame[:block_h, bit * block_w : (bit + 1) * block_w].mean() > 127) << bit
        for bit in range(STAMP_BITS)
    )


def _asked(request: RenderRequest) -> str:
    """The size prompt.json asked for, with ? for a side it left out."""
    return f"{request.width or '?'}x{request.height or '?'}"
