"""The speech stage of a script job: the script (or prompt.json's "speech") spoken to a WAV.

It runs between validation and the talking-head stage, in the same worker and under the same
lease: the speech engine named by DROPREEL_ENGINE_SPEECH turns the text into chunks of speech,
joined into one track, which then goes to the talking-head engine exactly as a dropped
recording would (decoded and checked by the same loader, under the same duration limit).
status.json shows the stage ("speech"), its progress in chunks, and its own time and cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config.costs import job_cost
from gpu.speech.engine import SpeechRequest
from gpu.speech.join import write_wav
from handlers import validate
from handlers.errors import InputRejected
from handlers.jobs import Job
from handlers.prompt import PromptFile
from handlers.runtime import Runtime
from handlers.status import StatusWriter

SPEECH_FIELDS = ("speech", "voice", "language")
"""prompt.json fields the speech stage reads and the video engine never sees."""


@dataclass(frozen=True)
class Speech:
    """The speech made for a job: the local WAV, and the key it is published under."""

    path: Path
    key: str


def speak(
    rt: Runtime,
    job: Job,
    local: dict[str, Path],
    prompt: PromptFile | None,
    writer: StatusWriter,
    tmp: Path,
) -> Speech:
    """Synthesise the job's script; InputRejected for a script that cannot be spoken."""
    status = writer.status
    started = time.monotonic()
    writer.stage("speech", write=True)
    text = prompt.speech if prompt and prompt.speech else None
    if text is None:
        text = validate.script(local["script"], job.script.key.rpartition("/")[2])
    sample = local.get("voice")
    request = SpeechRequest(
        text=text,
        voice_sample=validate.audio(sample, rt.settings, sample.name) if sample else None,
        voice=prompt.voice if prompt else None,
        language=prompt.language if prompt else None,
        seed=prompt.seed if prompt else None,
    )
    name = rt.settings.engine_speech
    engine = rt.engine_loader(name)
    plan = engine.check_inputs(request)
    status.progress = {"done": 0, "total": len(plan.chunks)}
    samples = np.concatenate(list(engine.render(plan, writer.progress)))
    seconds = len(samples) / plan.sample_rate
    if seconds > rt.settings.max_audio_seconds:
        raise InputRejected(
            f"the script makes {seconds:.0f} s of speech; a talking head may be at most "
            f"{rt.settings.max_audio_seconds:.0f} s long: shorten the script or split it"
        )
    path = tmp / "speech" / Path(job.speech_key).name
    path.parent.mkdir(exist_ok=True)
    write_wav(path, samples, plan.sample_rate)
    spent = round(time.monotonic() - started, 3)
    status.speech = {
        "engine": name,
        "key": job.speech_key,
        "duration_seconds": round(seconds, 3),
        "settings": plan.describe(),
        "seconds": spent,
        "cost_usd": job_cost(spent, rt.usd_per_hour) if rt.usd_per_hour is not None else None,
    }
    return Speech(path, job.speech_key)
