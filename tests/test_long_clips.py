"""Text-to-video longer than the engine's clip, through the real lifecycle with the preview
engine (20 s cards): clip after clip, each continuing from the last frame of the one before,
one MP4 as long as asked."""

from __future__ import annotations

from gpu.diffusers_models import MODELS
from gpu.engine import RenderRequest
from gpu.preview import MAX_CARD_SECONDS
from gpu.registry import engine_class
from gpu.segment_join import decode_frames
from tests.helpers import Notifications, prompt, run_tick, runtime, status


def test_a_video_longer_than_a_clip_is_made_clip_after_clip(local_storage, make_settings, tmp_path):
    storage = local_storage
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("t/kite.prompt.json", prompt(duration_seconds=45, width=128, height=96, fps=8))
    run_tick(rt)

    [note] = notes.read()
    assert note["state"] == "done"
    st = status(storage, "t/.dropreel/kite/status.json")
    assert st["settings"]["clips"] == 3 and st["settings"]["frames"] == 45 * 8
    assert not [a for a in st["adjustments"] if "capped" in a]  # nothing cut short
    (tmp_path / "out.mp4").write_bytes(storage.get("t/kite.mp4"))
    frames = list(decode_frames(tmp_path / "out.mp4"))
    assert len(frames) == 45 * 8 and st["video"]["duration_seconds"] == 45
    # the second clip continues from the first one's last frame, whose progress bar (along
    # the bottom edge) is full: it shows, under the new caption's shade, from the second
    # clip's first frame on, and never in the first clip's first frame
    cut = int(MAX_CARD_SECONDS * 8)

    def bar(frame) -> float:
        return float(frame[-2:, 64:].mean())

    assert bar(frames[cut - 1]) > bar(frames[cut]) > bar(frames[0]) + 40


def test_a_video_within_one_clip_is_one_render(local_storage, make_settings, tmp_path):
    storage = local_storage
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("t/kite.prompt.json", prompt(duration_seconds=4, width=128, height=96, fps=8))
    run_tick(rt)
    st = status(storage, "t/.dropreel/kite/status.json")
    assert st["state"] == "done" and "clips" not in st["settings"]
    assert st["video"]["frames"] == 32


def test_each_video_engine_names_a_clip_its_checks_accept():
    """The clip length handlers/long_clips.py asks for passes the engine's own length check,
    for the first clip and for the image-to-video clips that continue it (no weights needed)."""
    for spec in MODELS.values():
        engine = engine_class(spec)()
        request = RenderRequest(kind="text_to_video", prompt="a kite")
        seconds = engine.longest_seconds(request)
        if seconds is None:
            continue  # the engine renders a long request itself (LTX-Video's long mode)
        for kind in {"text_to_video", "image_to_video"} & set(spec.kinds):
            asked = RenderRequest(kind=kind, prompt="a kite", duration_seconds=seconds)
            limit = spec.variant_for(spec.default_profile, kind).max_frames or spec.max_frames
            frames = engine._frames(asked, engine._fps(asked, []), limit, [])
            assert frames <= limit and frames == round(seconds * engine._fps(asked, []))
