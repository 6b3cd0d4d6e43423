"""Every bad input in the corpus fails its job once, in plain words, through the real lifecycle.

Files land in a moto S3 bucket; the poller's tick claims the job and the inline dispatcher runs
it. Each case must end with: a `failed` status.json whose error names the file and the problem,
one `.failed` marker, exactly one notification, no MP4, attempt 1 (no retry), and later ticks
that do nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpu.media import STRIP_PIXELS, to_rgb
from gpu.media import _to_rgb as to_rgb_whole
from handlers.runtime import Runtime
from infra.local_dispatch import InlineDispatcher
from infra.storage.s3 import S3Storage
from tests.bad_inputs import Case, cases, flat_png, good_png, good_wav
from tests.helpers import Outcomes
from triggers.poller import tick

CASES = cases()


class Recorder:
    def __init__(self) -> None:
        self.events = []

    def notify(self, event) -> None:
        self.events.append(event)


def test_corpus_is_big_enough():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_once_in_plain_words(case: Case, s3_client, bucket, make_settings):
    storage = S3Storage(bucket, "inbox/", client=s3_client)
    rt = Runtime(storage, make_settings(storage, **case.settings), Recorder())
    folder = f"{case.id}/"
    for name, body in case.files.items():
        s3_client.put_object(Bucket=bucket, Key=f"inbox/{folder}{name}", Body=body)
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)

    report = tick(rt, dispatcher)

    job = f"{folder}{case.stem}"
    assert report.claimed == [job]
    assert results == {job: "failed"}
    status = json.loads(storage.get(f"{folder}.dropreel/{case.stem}/status.json"))
    assert status["state"] == "failed"
    assert status["attempt"] == 1
    for words in case.expect:
        assert words in status["error"], status["error"]
    assert "Traceback" not in status["error"]
    assert status["notification"] == "sent"
    (event,) = rt.notifier.events
    assert event.state == "failed"
    assert event.status.error == status["error"]
    keys = {o.key for o in storage.list().objects}
    assert sum(k.endswith(".failed") for k in keys) == 1
    assert not any(k.endswith((".done", ".mp4")) for k in keys)

    for _ in range(2):  # nothing loops: later ticks see a failed job and leave it alone
        again = tick(rt, dispatcher)
        assert not again.claimed and not again.taken_back and not again.failed
    assert len(rt.notifier.events) == 1


def test_odd_but_valid_names_render(s3_client, bucket, make_settings):
    """Spaces, '+', unicode and '..' inside a name are fine; the video lands beside them."""
    storage = S3Storage(bucket, "inbox/", client=s3_client)
    rt = Runtime(storage, make_settings(storage), Recorder())
    folder = "Équipe 7/été+hiver/"
    s3_client.put_object(Bucket=bucket, Key=f"inbox/{folder}ça..va 😀.png", Body=good_png())
    s3_client.put_object(Bucket=bucket, Key=f"inbox/{folder}voix+1.wav", Body=good_wav())
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)
    tick(rt, dispatcher)
    assert results == {f"{folder}ça..va 😀": "done"}
    assert storage.get(f"{folder}ça..va 😀.mp4")[4:8] == b"ftyp"


def test_dot_dot_segments_are_never_inputs(s3_client, bucket, make_settings):
    """A key with a '..' segment is not a job (nothing is read or written near it), and it
    does not stop the tick from rendering the other jobs."""
    storage = S3Storage(bucket, "inbox/", client=s3_client)
    rt = Runtime(storage, make_settings(storage), Recorder())
    for key in ("inbox/../evil.png", "inbox/a/../evil.wav", "inbox/a/../evil.png"):
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3_client.put_object(Bucket=bucket, Key="inbox/ok/face.png", Body=good_png())
    s3_client.put_object(Bucket=bucket, Key="inbox/ok/face.wav", Body=good_wav())
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)
    report = tick(rt, dispatcher)
    assert report.claimed == ["ok/face"]
    assert results == {"ok/face": "done"}
    listed = {o.key for o in storage.list().objects}
    assert not any(".dropreel" in k for k in listed if ".." in k)


def test_folder_prompt_beside_a_stem_prompt_renders_both(s3_client, bucket, make_settings):
    """prompt.json beside x.prompt.json, no media: two text-to-video jobs, as the README says."""
    storage = S3Storage(bucket, "inbox/", client=s3_client)
    rt = Runtime(storage, make_settings(storage), Recorder())
    s3_client.put_object(Bucket=bucket, Key="inbox/t/prompt.json", Body=b'{"prompt": "a boat"}')
    s3_client.put_object(Bucket=bucket, Key="inbox/t/x.prompt.json", Body=b'{"prompt": "a kite"}')
    results = Outcomes()

    tick(rt, InlineDispatcher(rt, results))

    assert results == {"t/prompt": "done", "t/x": "done"}
    assert storage.get("t/prompt.mp4")[4:8] == storage.get("t/x.mp4")[4:8] == b"ftyp"
    assert sorted(e.status.job for e in rt.notifier.events) == ["t/prompt", "t/x"]


# The worst case of the pixel limit: zero rows of the widest pixels Pillow decodes, in a file of
# kilobytes (the case is the same RGBA square at 6324x6324, 155 KB, under the 40 M
# default). A limit of 17 M pixels keeps the test quick.
LIMIT = 17_000_000
SQUARE = (4123, 4123)


def test_an_image_just_under_the_pixel_limit_renders(s3_client, bucket, make_settings):
    storage = S3Storage(bucket, "inbox/", client=s3_client)
    rt = Runtime(storage, make_settings(storage, max_image_pixels=LIMIT), Recorder())
    body = flat_png(*SQUARE)
    assert len(body) < 100_000 and SQUARE[0] * SQUARE[1] <= LIMIT
    s3_client.put_object(Bucket=bucket, Key="inbox/big/face.png", Body=body)
    s3_client.put_object(Bucket=bucket, Key="inbox/big/face.wav", Body=good_wav())
    results = Outcomes()

    tick(rt, InlineDispatcher(rt, results))

    assert results == {"big/face": "done"}
    status = json.loads(storage.get("big/.dropreel/face/status.json"))
    assert status["attempt"] == 1 and status["video"]["width"] == 512
    assert storage.get("big/face.mp4")[4:8] == b"ftyp"


DECODE = """
import json, resource, sys
from pathlib import Path
from config.settings import Settings
from handlers import validate

settings = Settings(_env_file=None, max_image_pixels=int(sys.argv[2]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
image = validate.image(Path(sys.argv[1]), settings)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"grown": grown * 1024, "size": image.size, "mode": image.mode}))
"""


@pytest.mark.parametrize(
    ("shape", "bit_depth", "colour"),
    [(SQUARE, 8, 6), ((7140, 2380), 8, 6), (SQUARE, 16, 0), (SQUARE, 8, 3)],
    ids=["rgba-square", "rgba-3-to-1", "gray-16-bit", "palette-transparent"],
)
def test_decoding_memory_follows_the_pixel_limit(tmp_path, shape, bit_depth, colour):
    """Peak memory of decoding, measured in a fresh process, stays under 10 bytes a pixel of
    the limit whatever the mode: the decoded pixels and one RGB copy at most, never a copy per
    conversion or orientation step (before: 12 to 20 bytes a pixel here; 916 MB for the 155 KB RGBA PNG at
    the default limit of 40 M pixels)."""
    path = tmp_path / "face.png"
    path.write_bytes(flat_png(*shape, bit_depth, colour))
    assert shape[0] * shape[1] <= LIMIT
    run = subprocess.run(
        [sys.executable, "-c", DECODE, str(path), str(LIMIT)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    result = json.loads(run.stdout)
    assert result["mode"] == "RGB"
    assert tuple(result["size"]) == shape
    assert result["grown"] < 10 * LIMIT, f"{result['grown'] / 2**20:.0f} MB"


def test_colour_conversion_in_strips_is_the_whole_conversion():
    """Big images are converted a strip at a time: the result is the same, pixel for pixel,
    as converting the whole image at once (transparency over white, palettes, 16-bit)."""
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 256, (1100, 1300, 4), dtype=np.uint8), "RGBA")
    palette = rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 3
    deep = Image.fromarray(rng.integers(0, 65536, (1100, 1300), dtype=np.uint16))
    for img in (rgba, palette, deep):
        assert img.width * img.height > STRIP_PIXELS
        whole = to_rgb_whole(img)
        assert np.array_equal(np.asarray(to_rgb(img)), np.asarray(whole)), img.mode
