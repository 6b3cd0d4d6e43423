"""One segment of a parallel render as plain data, so another machine can render it.

On Modal each segment is its own call on the engine class (infra/modal/segments.py): the
coordinator sends the job's `Ticket` (handlers/ticket.py) plus the segment's number, frames,
seed and the attempt that handed it out. The segment's worker finds the job by listing its
folder, downloads and checks its inputs as a run does, and renders the segment
(`segments.render_segment`), which stores nothing if the job's lease has moved on.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from gpu.pauses import Span
from handlers.errors import LeaseLost
from handlers.lifecycle import download_inputs, render_request
from handlers.runtime import Runtime
from handlers.segments import SegmentResult, SegmentTask, render_segment
from handlers.ticket import Ticket, TicketRejected, find_job


def segment_ticket(job_ticket: Ticket, task: SegmentTask) -> dict[str, Any]:
    return {
        "job": job_ticket.to_dict(),
        "index": task.index,
        "start": task.span.start,
        "end": task.span.end,
        "attempt": task.attempt,
        "fps": task.fps,
        "seed": task.request.seed,
    }


def run_segment_ticket(rt: Runtime, data: dict[str, Any]) -> dict[str, Any]:
    """Render the segment a ticket names; its result as a dict (`SegmentResult`'s fields)."""
    try:
        ticket = Ticket.from_dict(data["job"])
        index, start, end = int(data["index"]), int(data["start"]), int(data["end"])
        attempt, fps, seed = int(data["attempt"]), int(data["fps"]), data["seed"]
    except (KeyError, TypeError, ValueError) as err:
        fields = "job, index, start, end, attempt, fps, seed"
        raise TicketRejected(f"a segment ticket needs {fields}: {err}") from err
    job = find_job(rt, ticket)
    if job is None or job.version != ticket.version:
        raise LeaseLost(f"{ticket.job}: its inputs changed since segment {index} was handed out")
    with tempfile.TemporaryDirectory(prefix="dropreel-seg-in-") as tmp:
        local = download_inputs(rt.storage, job, Path(tmp))
        request = render_request(job, local, ticket.route().prompt, rt.settings)
        task = SegmentTask(
            job, ticket.engine, replace(request, seed=seed), index, Span(start, end), attempt, fps
        )
        result: SegmentResult = render_segment(rt, task)
    return {"index": result.index, "frames": result.frames, "seconds": result.seconds}
