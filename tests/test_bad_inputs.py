"""Every bad input in the corpus fails its job once, in plain words, through the real lifecycle.

Files land in a moto S3 bucket; the poller's tick claims the job and the inline dispatcher runs
it. Each case must end with: a `failed` status.json whose error names the file and the problem,
one `.failed` marker, exactly one notification, no MP4, attempt 1 (no retry), and later ticks
that do nothing.
"""

from __future__ import annotations

import json

import pytest

from handlers.runtime import Runtime
from infra.local_dispatch import InlineDispatcher
from infra.storage.s3 import S3Storage
from tests.bad_inputs import Case, cases, good_png, good_wav
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
