"""The `dropreel` command: watch, status, demo, schema.

Commands that render or notify here (`watch`, `serve`) check the settings before they start
(`infra/preflight.py`); every operator mistake ends the command with one `dropreel: ...` line per
problem and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections import Counter
from collections.abc import Sequence

from config.extras import MissingExtra
from config.settings import Settings, load_settings

log = logging.getLogger("dropreel")


def _settings(args: argparse.Namespace, **overrides) -> Settings:
    return load_settings(**overrides)


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("dropreel")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def cmd_watch(args: argparse.Namespace) -> int:
    from handlers.lifecycle import RunOutcome
    from infra.cli.progress import FrameBars
    from infra.local_dispatch import PoolDispatcher
    from infra.preflight import check_startup
    from infra.wiring import build_notifier, build_runtime
    from triggers.poller import tick, watch

    settings = _settings(
        args, watch_root=args.url, settle_seconds=args.settle, workers=args.workers
    )
    check_startup(settings)
    rt = build_runtime(settings, notifier=build_notifier(settings, console=True))
    rt.on_frame = FrameBars()
    outcomes: Counter[RunOutcome] = Counter()
    counting = threading.Lock()

    def count(job: object, outcome: RunOutcome) -> None:
        with counting:
            outcomes[outcome] += 1

    dispatcher = PoolDispatcher(rt, settings.workers, on_result=count)
    try:
        if args.once:
            report = tick(rt, dispatcher, full=True)  # every job, not only the index's
            dispatcher.wait()
            counts: Counter[str] = Counter()
            for phase, n in report.states.items():
                counts[phase.state] += n
            states = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
            failed = len(report.failed) + outcomes[RunOutcome.FAILED]
            print(
                f"{report.jobs} jobs ({states or 'none'}); claimed {len(report.claimed)}, "
                f"took back {len(report.taken_back)}, done {outcomes[RunOutcome.DONE]}, "
                f"failed {failed}"
            )
            return 0
        print(f"watching {rt.storage.url} every {settings.poll_seconds:.0f}s (Ctrl-C to stop)")
        watch(rt, dispatcher, settings.poll_seconds)
    except KeyboardInterrupt:
        print("stopping: waiting for renders in progress")
    finally:
        dispatcher.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from handlers.jobs import discover
    from infra.storage import open_storage

    settings = _settings(args, watch_root=args.url)
    storage = open_storage(settings.watch_root, settings, create=False)
    listing = storage.list()
    jobs = discover(
        listing.objects, listing.server_time, settings.settle_seconds, settings.lease_seconds
    )
    defaults = _FolderDefaults(storage, listing.objects, settings.max_prompt_bytes)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "job": j.name,
                        "kind": j.kind,
                        "state": j.phase.state,
                        "version": j.version,
                        "output": j.output_key,
                        "folder_settings": defaults.of(j.folder),
                    }
                    for j in jobs
                ],
                indent=2,
            )
        )
        return 0
    if not jobs:
        print(f"no jobs under {storage.url}")
        return 0
    width = max(len(j.name) for j in jobs)
    print(f"{'JOB':<{width}}  {'KIND':<15} {'STATE':<10} VERSION")
    for j in jobs:
        print(f"{j.name:<{width}}  {j.kind or '-':<15} {j.phase.state:<10} {j.version}")
        resolved = defaults.of(j.folder)
        if "error" in resolved:
            print(f"  folder settings refused: {resolved['error']}")
        elif resolved:
            shown = ", ".join(
                f"{name}={json.dumps(v['value'], ensure_ascii=False)} ({v['from']})"
                for name, v in sorted(resolved.items())
            )
            print(f"  folder settings: {shown}")
    return 0


class _FolderDefaults:
    """What the dropreel.json files of a listing give each folder, read once per folder."""

    def __init__(self, storage, objects, max_bytes: int) -> None:
        from handlers.folder_settings import is_settings_file

        self.storage, self.max_bytes = storage, max_bytes
        self.present = {o.key for o in objects if is_settings_file(o.key)}
        self.cache: dict[str, dict] = {}

    def of(self, folder: str) -> dict:
        """field -> {value, from}; {"error": ...} for a settings file that is refused."""
        from handlers.errors import InputRejected
        from handlers.folder_settings import resolve

        if not self.present:
            return {}
        if folder not in self.cache:
            try:
                found = resolve(self.storage, folder, self.max_bytes, self.present)
                self.cache[folder] = found.describe()
            except InputRejected as err:
                self.cache[folder] = {"error": str(err)}
        return self.cache[folder]


def cmd_schema(args: argparse.Namespace) -> int:
    from handlers.prompt import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from infra.cli.demo import run_demo

    return run_demo(out_dir=args.out, timeout=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dropreel", description="Drop files in a bucket folder, get an MP4 next to them."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--version", action="version", version=f"dropreel {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("watch", help="poll a watch root and render ready jobs")
    p.add_argument(
        "url", nargs="?", help="file:///path or s3://bucket/prefix (else DROPREEL_WATCH_ROOT)"
    )
    p.add_argument("--once", action="store_true", help="one tick, wait for its renders, exit")
    p.add_argument("--workers", type=int, help="jobs rendered at once")
    p.add_argument("--settle", type=float, help="settle window in seconds")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "status",
        help="list the jobs under a watch root and their states (queued, running, done, failed, "
        "cancelled, or incomplete while a file is missing), in status.json's words, and the "
        "folder settings (dropreel.json) each job takes",
    )
    p.add_argument("url", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("demo", help="run the whole flow against an in-process S3 server")
    p.add_argument("--out", default="dropreel-demo", help="folder to copy the MP4s into")
    p.add_argument("--timeout", type=float, default=300)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("schema", help="print the JSON Schema of prompt.json")
    p.set_defaults(func=cmd_schema)

    from infra.cli.deploy import add_parsers as add_deploy_parsers
    from infra.cli.serve import add_webhook_commands
    from infra.cli.weights import add_weights_parser

    add_deploy_parsers(sub)  # deploy
    add_weights_parser(sub)  # weights pull|list [--modal]
    add_webhook_commands(sub)  # serve, setup-notifications
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from handlers.errors import DropreelError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (DropreelError, ValueError, MissingExtra) as err:
        for line in str(err).splitlines() or [type(err).__name__]:
            print(f"dropreel: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
