"""Issue 14, point 1: the edges where the engine differed from MeiGen-AI's reference.

- the portrait's centre crop: torchvision's `center_crop` offsets, `int(round(excess / 2))`;
- prompts cleaned as the reference's T5 tokenizer cleans them: ftfy, HTML unescape twice;
- the last clip of a streaming render: a full clip on mirrored audio, trimmed;
- integer PCM scaled to [-1, 1] before the audio encoder: the single loader of the foundations
  issue does it (`tests/test_infinitetalk_audio.py`, every encoding of the same speech gives the
  same features; unscaled 16/24/32-bit samples would fail it by orders of magnitude).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from gpu.infinitetalk import pipeline  # noqa: E402
from gpu.infinitetalk.sampler import frame_plan, mirror_past_end  # noqa: E402
from infra.cli import samples  # noqa: E402
from tests.helpers import decoded_request  # noqa: E402
from tests.test_infinitetalk_engine import TINY_PROFILES, engine, tiny_weights  # noqa: E402, F401


def _torchvision_crop(image: Image.Image, width: int, height: int) -> np.ndarray:
    """The reference's resize_and_centercrop, with torchvision's centre-crop offsets written out."""
    scale = max(height / image.height, width / image.width)
    new_w, new_h = math.ceil(scale * image.width), math.ceil(scale * image.height)
    resized = np.asarray(image.resize((new_w, new_h), Image.Resampling.BILINEAR))
    top = round((new_h - height) / 2.0)  # torchvision: int(round(...)), Python's round
    left = round((new_w - width) / 2.0)
    return resized[top : top + height, left : left + width]


@pytest.mark.parametrize("size", [(64, 76), (76, 64), (64, 68), (100, 64), (64, 64)])
def test_centre_crop_lands_where_torchvision_puts_it(size):
    rows = np.arange(size[1], dtype=np.uint8)[:, None, None] * 3
    cols = np.arange(size[0], dtype=np.uint8)[None, :, None] * 2
    image = Image.fromarray(np.broadcast_to(rows + cols, (size[1], size[0], 3)).copy())
    got = pipeline.fit_to_bucket(image, 16, 16)
    want = torch.from_numpy(_torchvision_crop(image, 16, 16).copy()).permute(2, 0, 1)
    assert torch.equal(got, want.float() / 127.5 - 1.0)


def test_64x76_portrait_is_cropped_two_rows_down_not_one():
    # 64x76 scaled to 16 wide is 16x19: 3 rows too many; round(1.5) = 2 rows off the top.
    rows = np.arange(76, dtype=np.uint8)[:, None, None] * 3
    image = Image.fromarray(np.broadcast_to(rows, (76, 64, 3)).copy())
    crop = pipeline.fit_to_bucket(image, 16, 16)
    resized = np.asarray(image.resize((16, 19), Image.Resampling.BILINEAR))
    assert torch.equal(crop[0, 0], torch.tensor(resized[2, :, 0]).float() / 127.5 - 1.0)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Tom &amp;amp; Jerry   talk", "Tom & Jerry talk"),  # unescaped twice
        ("a woman in a cafÃ© smiles", "a woman in a café smiles"),  # ftfy repairs mojibake
        ("  &lt;b&gt;hello&lt;/b&gt;\n", "<b>hello</b>"),
    ],
)
def test_prompts_are_cleaned_as_the_reference_cleans_them(raw, clean):
    assert pipeline.clean_prompt(raw) == clean


def test_streaming_clips_are_all_full_and_the_last_is_trimmed():
    assert frame_plan(100, clip=81, motion=9) == [(0, 81), (72, 81)]
    assert frame_plan(153, clip=81, motion=9) == [(0, 81), (72, 81)]
    assert frame_plan(154, clip=81, motion=9) == [(0, 81), (72, 81), (144, 81)]
    assert frame_plan(61, clip=81, motion=9) == [(0, 61)]  # one clip: no trimming


def test_audio_past_the_end_is_the_speech_mirrored():
    speech = torch.arange(10, dtype=torch.float32)[:, None, None]  # [N=10, layers, C]
    extended = mirror_past_end(speech, end=14)  # the reference appends 14 - 10 + 3 frames
    assert extended[:, 0, 0].tolist() == [*range(10), 9, 8, 7, 6, 5, 4, 3]
    assert torch.equal(mirror_past_end(speech, end=9), speech)


def test_last_clip_renders_full_length_on_mirrored_audio(engine, tmp_path, monkeypatch):  # noqa: F811
    profile = TINY_PROFILES["balanced"]
    clip, motion = profile.clip_frames, profile.motion_frames
    total = clip + 4  # 21: the second clip needs only 9 new frames of its 17
    wav = tmp_path / "v.wav"
    wav.write_bytes(samples.voice_wav(total / 25 + 0.01, rate=16000))
    png = tmp_path / "f.png"
    png.write_bytes(samples.portrait_png(64, 64))
    plan = engine.check_inputs(decoded_request("talking_head", image=png, audio=wav))
    assert plan.num_frames == total
    seen: list[tuple[int, int, torch.Tensor]] = []
    real = pipeline.frame_windows

    def spy(embedding, start, count, *args):
        seen.append((start, count, embedding))
        return real(embedding, start, count, *args)

    monkeypatch.setattr(pipeline, "frame_windows", spy)
    frames = list(engine.render(plan))
    assert len(frames) == total
    assert [(start, count) for start, count, _ in seen] == [(0, clip), (clip - motion, clip)]
    speech = seen[-1][2]  # the features both clips read
    heard = int(plan.request.audio.seconds * 25)  # frames of real speech
    end = 2 * clip - motion  # where the last full clip ends
    assert speech.shape[0] == end + 3
    mirrored = torch.flip(speech[heard - (end - heard + 3) : heard], [0])
    assert torch.equal(speech[heard:], mirrored)
