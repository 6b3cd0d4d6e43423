"""The code that runs on Modal, run here through `.local()` against moto's S3 server.

The scheduled poller claims and dispatches; the engine class's `run` method rebuilds the job
from its ticket and runs the lifecycle. What is checked is what a user sees: the MP4 in the
bucket (decoded), status.json, and the notification (a JSON-lines log).
"""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest

from gpu.registry import ENGINES, EngineSpec
from handlers.ticket import Ticket
from infra.cli import samples
from infra.modal import runtime as modal_runtime
from tests.modal_helpers import decode_mp4, drop, events, load_app, read_json

STATUS = "inbox/alice/.dropreel/alice/status.json"
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*executing locally and will not have access to the mounted Volume"
)


@pytest.fixture
def modal_env(monkeypatch, moto_endpoint, s3_client, bucket, tmp_path):
    """The environment a deployed container sees: settings + storage keys, S3 = moto."""
    log = tmp_path / "events.jsonl"
    for key, value in {
        "DROPREEL_WATCH_ROOT": f"s3://{bucket}/inbox/",
        "DROPREEL_ENDPOINT_URL": moto_endpoint,
        "DROPREEL_REGION": "us-east-1",
        "DROPREEL_SETTLE_SECONDS": "0",
        "DROPREEL_LEASE_SECONDS": "30",
        "DROPREEL_NOTIFIER": "none",
        "DROPREEL_NOTIFY_LOG": str(log),
        "DROPREEL_MODAL_DISPATCH": "local",
    }.items():
        monkeypatch.setenv(key, value)
    return {"client": s3_client, "bucket": bucket, "log": log}


@pytest.fixture
def gpu_engine(monkeypatch):
    spec = EngineSpec(
        name="tiny_gpu",
        kinds=("text_to_video", "image_to_video"),
        target="gpu.preview:PreviewEngine",
        gpu="L40S",
    )
    monkeypatch.setitem(ENGINES, spec.name, spec)
    return spec


def talking_head(env) -> None:
    drop(
        env["client"],
        env["bucket"],
        {
            "inbox/alice/alice.png": samples.portrait_png(160, 200),
            "inbox/alice/alice.wav": samples.voice_wav(seconds=1.0),
        },
    )


def test_scheduled_poller_renders_through_the_engine_class(modal_env):
    client, bucket = modal_env["client"], modal_env["bucket"]
    talking_head(modal_env)
    module = load_app()

    report = module.poll.local()

    assert report["claimed"] == ["alice/alice"]
    assert [t["engine"] for t in report["dispatched"]] == ["preview"]
    video = decode_mp4(client.get_object(Bucket=bucket, Key="inbox/alice/alice.mp4")["Body"].read())
    assert video["frames"] == 25 and video["audio"]
    status = read_json(client, bucket, STATUS)
    assert status["state"] == "done" and status["engine"] == "preview"
    assert status["gpu"] == "cpu" and status["gpu_seconds"] > 0
    hourly = 2 * 0.047 + 4 * 0.008  # 2 cores and 4 GiB
    assert status["cost_usd"] == pytest.approx(status["gpu_seconds"] * hourly / 3600, abs=1e-6)
    assert 0 < status["load_seconds"] < status["gpu_seconds"]  # the container's first job
    [event] = events(modal_env["log"])
    assert event["state"] == "done" and event["job"] == "alice/alice"
    assert event["gpu"] == "cpu" and event["cost_usd"] == status["cost_usd"]

    again = module.poll.local()  # the next tick finds nothing to do
    assert again["claimed"] == [] and again["dispatched"] == []
    assert len(events(modal_env["log"])) == 1


def test_prompt_engine_routes_to_that_engines_gpu_class(modal_env, gpu_engine):
    client, bucket = modal_env["client"], modal_env["bucket"]
    drop(
        client,
        bucket,
        {"inbox/boat/prompt.json": samples.prompt_json(engine="tiny_gpu", duration_seconds=1)},
    )
    report = load_app().poll.local()

    assert [t["engine"] for t in report["dispatched"]] == ["tiny_gpu"]
    status = read_json(client, bucket, "inbox/boat/.dropreel/prompt/status.json")
    assert status["state"] == "done" and status["engine"] == "tiny_gpu"
    assert status["gpu"] == "L40S"
    hourly = 1.95 + 8 * 0.047 + 48 * 0.008  # an L40S, 8 cores, 48 GiB
    assert status["cost_usd"] == pytest.approx(status["gpu_seconds"] * hourly / 3600, abs=1e-6)
    video = decode_mp4(client.get_object(Bucket=bucket, Key="inbox/boat/prompt.mp4")["Body"].read())
    assert video["frames"] == 24
    [event] = events(modal_env["log"])
    assert event["engine"] == "tiny_gpu" and event["gpu"] == "L40S"


def _claim_one(module) -> dict:
    """Claim the ready job the way the poller does, keeping the ticket instead of spawning."""
    tickets: list[dict] = []
    dispatcher = modal_runtime.dispatcher_for(modal_runtime.Settings(), module.ENGINE_CLASSES)
    dispatcher.launch = lambda engine, ticket: tickets.append(ticket)
    from triggers.poller import tick

    tick(dispatcher.rt, dispatcher)
    [ticket] = tickets
    return ticket


def test_engine_method_runs_a_ticket_once(modal_env):
    client, bucket = modal_env["client"], modal_env["bucket"]
    talking_head(modal_env)
    module = load_app()
    ticket = _claim_one(module)
    assert json.loads(json.dumps(ticket)) == ticket  # plain data
    engine = module.EnginePreview()

    first = engine.run.local(ticket)
    again = engine.run.local(ticket)  # a duplicate delivery (Modal retry, double spawn)

    assert first == {"job": "alice/alice", "result": "done", "engine": "preview"}
    assert again["result"] == "stale"
    assert len(events(modal_env["log"])) == 1
    assert (
        decode_mp4(client.get_object(Bucket=bucket, Key="inbox/alice/alice.mp4")["Body"].read())[
            "frames"
        ]
        == 25
    )


def test_ticket_whose_lease_was_taken_back_writes_nothing(modal_env):
    client, bucket = modal_env["client"], modal_env["bucket"]
    talking_head(modal_env)
    module = load_app()
    ticket = _claim_one(module)
    stale = {**ticket, "lease_etag": "0" * 32}

    result = module.EnginePreview().run.local(stale)

    assert result["result"] == "lost"
    listed = client.list_objects_v2(Bucket=bucket, Prefix="inbox/alice/")
    keys = {o["Key"] for o in listed.get("Contents", [])}
    assert "inbox/alice/alice.mp4" not in keys and STATUS not in keys
    assert events(modal_env["log"]) == []


def test_ticket_for_changed_inputs_is_stale(modal_env):
    client, bucket = modal_env["client"], modal_env["bucket"]
    talking_head(modal_env)
    module = load_app()
    ticket = _claim_one(module)
    drop(client, bucket, {"inbox/alice/alice.wav": samples.voice_wav(seconds=1.5)})  # new version

    assert module.EnginePreview().run.local(ticket)["result"] == "stale"


def test_malformed_or_misrouted_tickets_are_rejected_not_retried(modal_env, gpu_engine):
    talking_head(modal_env)
    module = load_app()
    ticket = _claim_one(module)
    engine = module.EnginePreview()
    assert engine.run.local({"folder": "x"})["result"] == "rejected"
    assert engine.run.local({**ticket, "attempt": "1"})["result"] == "rejected"
    assert engine.run.local({**ticket, "watch_root": "s3://other/"})["result"] == "rejected"
    assert module.EngineTinyGpu().run.local(ticket)["result"] == "rejected"  # preview's ticket
    assert events(modal_env["log"]) == []


def test_unknown_engine_in_prompt_fails_once_in_plain_words(modal_env):
    client, bucket = modal_env["client"], modal_env["bucket"]
    drop(client, bucket, {"inbox/x/prompt.json": samples.prompt_json(engine="nope")})
    module = load_app()
    module.poll.local()
    module.poll.local()
    status = read_json(client, bucket, "inbox/x/.dropreel/prompt/status.json")
    assert status["state"] == "failed" and "no engine named 'nope'" in status["error"]
    assert [e["state"] for e in events(modal_env["log"])] == ["failed"]


def test_default_engine_not_deployed_fails_the_job_without_a_container(modal_env, monkeypatch):
    monkeypatch.setenv("DROPREEL_ENGINE_TEXT_TO_VIDEO", "ghost")
    client, bucket = modal_env["client"], modal_env["bucket"]
    drop(client, bucket, {"inbox/y/prompt.json": samples.prompt_json()})
    report = load_app().poll.local()
    assert report["dispatched"] == []
    status = read_json(client, bucket, "inbox/y/.dropreel/prompt/status.json")
    assert status["state"] == "failed" and "'ghost' is not deployed on Modal" in status["error"]
    assert len(events(modal_env["log"])) == 1


def test_a_second_tick_in_the_same_container_is_skipped(modal_env):
    module = load_app()
    with modal_runtime._tick_lock:
        result: dict = {}
        worker = threading.Thread(target=lambda: result.update(module.poll.local()))
        worker.start()
        worker.join()
    assert result == {"skipped": True}


def test_spawn_launcher_reaches_the_engines_class():
    spawned: list[tuple[str, dict]] = []

    class FakeMethod:
        def __init__(self, name):
            self.name = name

        def spawn(self, ticket):
            spawned.append((self.name, ticket))
            return SimpleNamespace(object_id=f"fc-{len(spawned)}")  # a modal.FunctionCall

    class FakeCls:
        def __init__(self, name):
            self.run = FakeMethod(name)

    classes = {"a": lambda: FakeCls("a"), "b": lambda: FakeCls("b")}
    call_id = modal_runtime.launcher(classes, "spawn")("b", {"t": 1})
    assert spawned == [("b", {"t": 1})]
    assert call_id == "fc-1"  # recorded in the lease by the dispatcher


def test_ticket_round_trip():
    ticket = Ticket("s3://b/inbox/", "a/", "x", "v1", "a/.dropreel/x/v1.lease", "e", 2, "preview")
    assert Ticket.from_dict(ticket.to_dict()) == ticket
    assert ticket.job == "a/x"


def test_each_container_restored_from_one_snapshot_names_itself(modal_env, monkeypatch):
    """The snapshot is taken after `import_libraries`; the id is made in `load`, after it."""
    client, bucket = modal_env["client"], modal_env["bucket"]
    module = load_app()
    modal_runtime.preload(module.PLAN.engine("preview"))  # what the snapshot holds
    workers = []
    for container in ("ta-01", "ta-02"):
        drop(client, bucket, {f"inbox/{container}/prompt.json": samples.prompt_json()})
        ticket = _claim_one(module)
        monkeypatch.setenv("MODAL_TASK_ID", container)
        assert module.EnginePreview().run.local(ticket)["result"] == "done"
        status = read_json(client, bucket, f"inbox/{container}/.dropreel/prompt/status.json")
        workers.append(status["worker"])
    assert workers[0].startswith("ta-01-") and workers[1].startswith("ta-02-")


def test_a_containers_load_time_is_billed_to_its_first_job_only(modal_env):
    client, bucket = modal_env["client"], modal_env["bucket"]
    module = load_app()
    engine = module.EnginePreview()  # one container
    billed = []
    for folder in ("first", "second"):
        drop(client, bucket, {f"inbox/{folder}/prompt.json": samples.prompt_json()})
        assert engine.run.local(_claim_one(module))["result"] == "done"
        billed.append(read_json(client, bucket, f"inbox/{folder}/.dropreel/prompt/status.json"))
    first, second = billed
    assert first["load_seconds"] > 0 and second["load_seconds"] is None
    assert first["gpu_seconds"] > first["load_seconds"]
    for status in billed:
        assert status["cost_usd"] == pytest.approx(
            status["gpu_seconds"] * (2 * 0.047 + 4 * 0.008) / 3600, abs=1e-6
        )
