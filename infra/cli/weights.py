"""`dropreel weights pull|list ENGINE`: fetch engine weights into the cache, or show what is there.

Pulling is the only step that talks to the Hugging Face Hub; renders read the cache offline.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from infra.weights import WEIGHT_SETS


def add_weights_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="download or list engine weights (Hugging Face cache)")
    p.add_argument("action", choices=["pull", "list"])
    p.add_argument("engine", nargs="?", help="engine name (list: all when omitted)")
    p.add_argument(
        "--profile", action="append", help="only the checkpoints of this profile (repeatable)"
    )
    p.add_argument("--cache-dir", help="cache directory (else DROPREEL_HF_CACHE_DIR / HF default)")
    p.add_argument(
        "--modal", action="store_true", help="pull inside Modal into the dropreel-weights Volume"
    )
    p.add_argument("--dir", help="talking-head weights folder (else DROPREEL_WEIGHTS_DIR)")
    p.add_argument("--required-only", action="store_true", help="talking-head: skip optional LoRAs")
    p.set_defaults(func=cmd_weights)


def cmd_weights(args: argparse.Namespace) -> int:
    from gpu.diffusers_models import MODELS, model_spec
    from gpu.errors import EngineError, WeightsMissing
    from gpu.weights import default_cache_dir, local_snapshot, pull, repos_for

    if args.engine in WEIGHT_SETS and not args.modal:
        return _weight_set(args)
    cache_dir = args.cache_dir or default_cache_dir()
    if args.action == "pull":
        if not args.engine:
            print(f"dropreel: name the engine to pull: {', '.join(MODELS)}")
            return 2
        if args.modal:
            from infra.cli.deploy import _pull_on_modal

            return _pull_on_modal(args.engine)
        if args.engine not in MODELS:
            from infra.weights import pull as pull_declared

            try:
                result = pull_declared(args.engine, cache_dir)
            except EngineError as err:
                print(f"dropreel: {err}", file=sys.stderr)
                return 2
            print(json.dumps(result, indent=2))
            return 0
        spec = model_spec(args.engine)
        try:
            snapshots = pull(spec, args.profile, cache_dir, token=os.environ.get("HF_TOKEN"))
        except (EngineError, ValueError) as err:
            print(f"dropreel: {err}")
            return 1
        for snap in snapshots:
            print(f"{spec.name}: {snap.repo.repo_id}@{snap.repo.revision} -> commit {snap.commit}")
            print(f"  {snap.path}")
        return 0
    names = [args.engine] if args.engine else list(MODELS)
    missing = 0
    for name in names:
        spec = model_spec(name)
        for repo in repos_for(spec, args.profile):
            try:
                snap = local_snapshot(repo, cache_dir, spec.name)
                state = f"present (commit {snap.commit})"
            except WeightsMissing:
                state, missing = "missing", missing + 1
            print(f"{spec.name:18} {repo.repo_id}@{repo.revision}: {state}")
    return 1 if missing and args.engine else 0


def _weight_set(args: argparse.Namespace) -> int:
    module = importlib.import_module(WEIGHT_SETS[args.engine])
    root = Path(args.dir).expanduser() if args.dir else None
    if args.action == "list":
        print(json.dumps(module.describe(root), indent=2))
        return 0
    for spec, path, revision in module.pull(root, include_optional=not args.required_only):
        print(f"{spec.repo}@{revision[:12]} -> {path} ({spec.license})")
    return 0
