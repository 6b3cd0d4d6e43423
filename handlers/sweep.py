"""The sweep: every folder of the watch root, streamed page by page, now and then.

The active index (handlers/active.py) leads fast ticks to the folders with work in flight; the
sweep is the net under it. It finds the jobs the index never heard of (dropped while no webhook
listened, or with the index lost) and the expired leases of folders whose entry went missing,
and it puts the index back in order: an entry for each folder with work in flight, none for
the others.

It never holds the bucket. A listing comes subtree by subtree (S3 lists keys in byte order, so
every key under `a/` comes together; the local backend walks depth first), so a folder is
complete as soon as a key outside it arrives. Only the folders above the current key are open
at any time: memory is bounded by the largest folder, not by the bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from handlers import layout
from handlers.active import Index, forget, next_look, reschedule
from handlers.reconcile import Dispatcher, TickReport, find_jobs, reconcile_jobs
from handlers.runtime import Runtime
from handlers.storage import Listing, ObjectInfo


def folder_of(key: str) -> str | None:
    """The job folder a key belongs to (metadata belongs to the folder it describes); None for
    keys no job reads (the index, temp files, unsafe names)."""
    if key.startswith((layout.INDEX_DIR, layout.TMP_PREFIX)):
        return None
    meta = layout.parse_meta(key)
    if meta is not None:
        return meta[0]
    if not layout.is_safe_key(key):
        return None
    return layout.split_key(key)[0]


def by_folder(pages: Iterable[Listing]) -> Iterator[tuple[str, Listing]]:
    """Each folder with its own objects (its files and its `.dropreel/` metadata) as one
    Listing, dated by the page that completed it, from pages that come subtree by subtree.

    The open folders are the current key's ancestors (each a prefix of the next), kept as a
    stack: a folder is complete, and handed over, once a key that is not inside it arrives."""
    stack: list[tuple[str, list[ObjectInfo]]] = []
    now = datetime.now(UTC)
    for page in pages:
        now = page.server_time
        for obj in page.objects:
            folder = folder_of(obj.key)
            if folder is None:
                continue
            while stack and not obj.key.startswith(stack[-1][0]):
                done, objects = stack.pop()
                yield done, Listing(objects, now, 0)
            if not stack or stack[-1][0] != folder:
                stack.append((folder, []))
            stack[-1][1].append(obj)
    while stack:
        done, objects = stack.pop()
        yield done, Listing(objects, now, 0)


def sweep(rt: Runtime, dispatcher: Dispatcher, index: Index | None) -> TickReport:
    """Look at every folder and act on its jobs. With an `index` (the index as listed at the
    start), make it match what was found; None: every tick sweeps and the index is unused."""
    lease_seconds, grace_seconds = rt.settings.lease_seconds, rt.settings.incomplete_grace_seconds
    report = TickReport(requests=index.pages if index else 0)
    entries = dict(index.entries) if index else {}
    for folder, listing in by_folder(_counting(rt.storage.iter_pages(), report)):
        jobs = find_jobs(rt, listing.objects, listing.server_time)
        reconcile_jobs(rt, jobs, listing.objects, listing.server_time, dispatcher, report)
        if index is None:
            continue
        listed = entries.pop(folder, [])
        due = next_look(jobs, listing.server_time, lease_seconds, grace_seconds)
        if due is not None and listed and index.due(folder) <= due:
            continue  # its entry already brings a tick here in time
        if due is not None or listed:
            report.requests += reschedule(rt.storage, folder, due, listed)
    if index is not None:
        for listed in entries.values():  # folders with nothing left in them
            report.requests += forget(rt.storage, listed)
        report.requests += forget(rt.storage, index.junk)
    return report


def _counting(pages: Iterator[Listing], report: TickReport) -> Iterator[Listing]:
    """The pages, each counted as one request (an empty listing is still one)."""
    report.requests += 1
    for number, page in enumerate(pages):
        report.requests += number > 0
        yield page
