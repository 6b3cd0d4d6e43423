"""`dropreel weights pull|list ENGINE`: fetch an engine's weights ahead of time, see what is there.

Engines name their weights in their own module (a `pull(root)` function and a `describe(root)`
list); this maps the names users type to those modules. Rendering never downloads: an engine
whose weights are missing fails with a message naming `dropreel weights pull ...`.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

# user-facing name -> module with pull(root, include_optional) and describe(root)
WEIGHT_SETS: dict[str, str] = {
    "talking-head": "gpu.infinitetalk.weights",
    "infinitetalk": "gpu.infinitetalk.weights",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="download or list model weights (before rendering)")
    p.add_argument("action", choices=["pull", "list"])
    p.add_argument("engine", choices=sorted(WEIGHT_SETS), help="which engine's weights")
    p.add_argument("--dir", help="weights folder (else DROPREEL_WEIGHTS_DIR)")
    p.add_argument("--required-only", action="store_true", help="skip optional LoRAs")
    p.set_defaults(func=cmd_weights)


def cmd_weights(args: argparse.Namespace) -> int:
    module = importlib.import_module(WEIGHT_SETS[args.engine])
    root = Path(args.dir).expanduser() if args.dir else None
    if args.action == "list":
        print(json.dumps(module.describe(root), indent=2))
        return 0
    for spec, path, revision in module.pull(root, include_optional=not args.required_only):
        print(f"{spec.repo}@{revision[:12]} -> {path} ({spec.license})")
    return 0
