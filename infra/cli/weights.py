"""`dropreel weights pull|list [ENGINE]`: fetch engine weights, or show what is on disk.

Pulling is the only step that talks to the Hugging Face Hub; renders read the weights offline.
Both actions run `gpu/weights.py` for every engine; `--modal` runs the same `pull` inside Modal,
into the weights Volume, so a local and a Modal pull fetch the same files. A Modal pull returns
at once (it can take hours) and says how to follow it; `--wait` blocks until it is done.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

COLUMNS = {
    "engine": "ENGINE",
    "name": "WEIGHTS",
    "revision": "REVISION",
    "profiles": "PROFILES",
    "size_gb": "GB",
    "present": "STATE",
    "path": "WHERE",
}


def add_weights_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="download or list engine weights")
    p.add_argument("action", choices=["pull", "list"])
    p.add_argument("engine", nargs="?", help="engine name (list: every engine when omitted)")
    p.add_argument("--profile", action="append", help="only what this profile needs (repeatable)")
    p.add_argument(
        "--language",
        action="append",
        dest="profile",
        help="a speech engine: only this language (repeatable; pocket-tts converts it once)",
    )
    p.add_argument("--cache-dir", help="Hugging Face cache (else DROPREEL_HF_CACHE_DIR / default)")
    p.add_argument("--dir", help="plain-folder weights root (else DROPREEL_WEIGHTS_DIR)")
    p.add_argument(
        "--modal", action="store_true", help="pull inside Modal into the dropreel-weights Volume"
    )
    p.add_argument("--wait", action="store_true", help="--modal: wait for the pull to finish")
    p.add_argument("--env", help="--modal: the Modal environment the app is deployed in")
    p.add_argument("--json", action="store_true", help="list: print JSON instead of a table")
    p.set_defaults(func=cmd_weights)


def cmd_weights(args: argparse.Namespace) -> int:
    from config.extras import require

    if args.action == "pull":
        require("modal" if args.modal else "huggingface_hub", "weights pull")
    from gpu.errors import EngineError
    from gpu.registry import ENGINES, get_spec
    from gpu.weights import Places, engine_spec, inventory, pull, sources_for

    get_spec("preview")  # the built-in registrations
    if args.action == "pull" and not args.engine:
        print(f"dropreel: name the engine to pull: {', '.join(ENGINES)}", file=sys.stderr)
        return 2
    try:
        specs = [engine_spec(args.engine)] if args.engine else list(ENGINES.values())
    except EngineError as err:
        print(f"dropreel: {err}", file=sys.stderr)
        return 2
    places = Places.from_settings(args.cache_dir, args.dir)
    if args.action == "pull":
        try:
            sources_for(specs[0], args.profile)  # an unknown profile fails here, not in Modal
            if args.modal:
                from infra.cli.deploy import _pull_on_modal

                return _pull_on_modal(specs[0].name, args.profile, args.env, args.wait)
            result = pull(specs[0], args.profile, places)
        except EngineError as err:
            print(f"dropreel: {err}", file=sys.stderr)
            return 1
        print(json.dumps(result, indent=2))
        return 0
    rows = [row for spec in specs for row in inventory(spec, places)]
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    missing = not all(row["present"] for row in rows)
    return 1 if missing and args.engine else 0


def table(rows: list[dict[str, Any]]) -> str:
    """Rows as aligned columns, one line per weight source."""

    def cell(row: dict[str, Any], column: str) -> str:
        value = row.get(column, "")
        if column == "present":
            return "-" if "repo" not in row else "present" if value else "missing"
        if isinstance(value, list):
            return ",".join(value)
        if column == "revision" and len(str(value)) == 40:
            return str(value)[:12]  # a commit id, shortened as git does
        return str(value)

    cells = [[cell(row, c) for c in COLUMNS] for row in rows]
    header = list(COLUMNS.values())
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *cells]
    )
