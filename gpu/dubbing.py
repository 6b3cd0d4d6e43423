"""Dubbing: how a source video and a new recording meet, the way InfiniteTalk's video mode does.

The reference (`generate_infinitetalk` in MeiGen-AI's `wan/multitalk.py`, given a video as
`cond_video`) renders as many frames as the audio lasts and conditions each clip on the source
frame where that clip starts; past the source's last frame it takes the last frame
(`extract_specific_frames`). So, for every engine that dubs:

- the dubbed video is as long as the new audio;
- a source longer than the audio is cut where the audio ends;
- a source shorter than the audio is held on its last frame for the rest.

The reference counts source frames by number; dropreel counts by time (output frame i shows the
source frame at i / fps), which is the same frame for a 25 fps source and keeps other rates in
step with the audio. Both engines follow this rule; each engine's own output rate and size are
its own (the preview keeps the source's, InfiniteTalk renders its buckets at 25 fps).
"""

from __future__ import annotations

import math
from fractions import Fraction

from gpu.media import VideoInfo


def source_index(frame: int, fps: Fraction | int, source_fps: Fraction) -> int:
    """The source frame under output frame `frame` (at `fps`): the last one shown by then."""
    return math.floor(Fraction(frame) * Fraction(source_fps) / Fraction(fps))


def length_adjustments(video: VideoInfo, audio_seconds: float) -> list[str]:
    """What the length rule did to this pair, in words for status.json (nothing if equal)."""
    gap = audio_seconds - video.seconds
    if gap > 0.5 / float(video.fps):
        return [
            f"the audio is {gap:.1f} s longer than {video.name}: the last {gap:.1f} s follow "
            "the video's last frame"
        ]
    if -gap > 0.5 / float(video.fps):
        return [
            f"{video.name} is {-gap:.1f} s longer than the audio: the dubbed video ends with "
            "the audio"
        ]
    return []
