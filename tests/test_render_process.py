"""`dropreel serve` renders in a process of its own: the webhook only claims and hands over."""

from __future__ import annotations

import os

from handlers.claims import claim
from handlers.jobs import discover
from infra.render_process import RenderProcess
from tests.helpers import Notifications, open_leases, png, wav


def test_a_claimed_job_renders_once_in_the_render_process(s3_storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    s3_storage.put("talk/ann.png", png())
    s3_storage.put("talk/ann.wav", wav())
    settings = make_settings(s3_storage, notify_log=str(notes.path))
    listing = s3_storage.list()
    [job] = discover(listing.objects, listing.server_time, 0, 30)
    lease = claim(s3_storage, job)
    assert lease is not None

    renders = RenderProcess(settings, workers=1)
    assert renders.process.pid != os.getpid()
    renders.dispatch(job, lease)
    renders.close()  # waits for the render in flight

    assert [(n["job"], n["state"]) for n in notes.read()] == [("talk/ann", "done")]
    keys = {o.key for o in s3_storage.list().objects}
    assert "talk/ann.mp4" in keys and open_leases(keys) == []
