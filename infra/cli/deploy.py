"""`dropreel deploy [--dry-run]` and the Modal side of `dropreel weights pull ENGINE --modal`.

`deploy` runs `modal deploy -m infra.modal.app` from the project root after checking the plan;
`--dry-run` imports the app offline and prints what would be deployed (functions, schedules,
GPUs, volumes, secrets, the settings shipped to the containers), read from the Modal objects
themselves, without any network call or Modal account.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APP_MODULE = "infra.modal.app"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="deploy the watcher and engines to Modal")
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be deployed; no network"
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: print JSON")
    p.add_argument("--env", help="Modal environment to deploy into (modal deploy -e)")
    p.set_defaults(func=cmd_deploy)


# ---- deploy ---------------------------------------------------------------------------------


def _secret_names(reprs: list[str]) -> list[str]:
    names = []
    for text in reprs:
        found = re.search(r"from_name\('([^']+)'", text)
        names.append(found.group(1) if found else "deployed settings")
    return names


def _gpu(info: Any) -> str | None:
    if not info.gpus:
        return None
    return ", ".join(name if count == 1 else f"{name}:{count}" for name, count in info.gpus)


def describe(module: Any = None) -> dict[str, Any]:
    """What the app module declares, read from its Modal objects (offline) and its plan."""
    if module is None:
        import importlib

        module = importlib.import_module(APP_MODULE)
    plan = module.PLAN

    def common(info: Any) -> dict[str, Any]:
        return {
            "gpu": _gpu(info),
            "cpu": info.cpu,
            "memory_mib": info.memory_mib,
            "timeout": info.timeout,
            "retries": info.max_retries or 0,
            "secrets": _secret_names(info.secrets),
            "volumes": {path: v.name for path, v in info.volumes.items()},
        }

    poll = module.poll.info()
    webhook = module.webhook.info()
    pull = module.pull_weights.info()
    functions = [
        {
            "name": "poll",
            "type": "scheduled",
            "schedule": poll.schedule,
            "image": "cpu",
            "min_containers": 0,
            "max_containers": 1,
            **common(poll),
        },
        {
            "name": "webhook",
            "type": "web (ASGI)",
            "concurrent_inputs": webhook.concurrency_info.max_inputs
            if webhook.concurrency_info
            else 1,
            "image": "cpu",
            "min_containers": plan.webhook_min_containers,
            "max_containers": plan.webhook_max_containers,
            "scaledown_window": plan.scaledown_window,
            **common(webhook),
        },
        {
            "name": "pull_weights",
            "type": "on demand",
            "image": "cpu",
            "min_containers": 0,
            "max_containers": None,
            **common(pull),
        },
    ]
    engines = []
    for engine_plan in plan.engines:
        info = module.ENGINE_CLASSES[engine_plan.engine]().run.info()
        engines.append(
            {
                "class": engine_plan.class_name,
                "engine": engine_plan.engine,
                "kinds": list(engine_plan.kinds),
                "method": "run",
                "image": engine_plan.image,
                "min_containers": engine_plan.min_containers,
                "max_containers": engine_plan.max_containers,
                "scaledown_window": engine_plan.scaledown_window,
                "memory_snapshot": engine_plan.memory_snapshot,
                "usd_per_hour": engine_plan.usd_per_hour,
                **common(info),
            }
        )
    return {
        "app": plan.app_name,
        "watch_root": plan.watch_root,
        "schedule": plan.schedule_text,
        "functions": functions,
        "engines": engines,
        "volumes": [
            {"name": name, "path": path, "use": "Hugging Face cache (HF_HOME)"}
            for path, name in plan.volumes.items()
        ],
        "secrets": [
            {"name": s.name, "required_keys": list(s.required_keys), "used_by": list(s.used_by)}
            for s in plan.secrets
        ],
        "retries_owner": module.modal_plan.RETRY_OWNER,
        "deployed_settings": plan.deployed_settings,
        "problems": list(plan.problems),
        "warnings": list(plan.warnings),
        "notes": list(plan.notes),
    }


def render(d: dict[str, Any]) -> str:
    lines = [
        f"Modal app {d['app']!r} (dry run: nothing was sent to Modal)",
        f"watch root: {d['watch_root']}",
        "",
        "functions:",
    ]
    for f in d["functions"]:
        extra = f"schedule {f['schedule']}" if f.get("schedule") else f["type"]
        if f.get("concurrent_inputs"):
            extra += f", {f['concurrent_inputs']} concurrent requests per container"
        maxc = f["max_containers"] if f["max_containers"] is not None else "auto"
        lines.append(
            f"  {f['name']:<14} {extra}; {f['image']} image, gpu {f['gpu'] or 'none'}, "
            f"containers {f['min_containers']}..{maxc}, timeout {f['timeout']}s, "
            f"retries {f['retries']}"
        )
    lines += ["", "engine classes (method run, one per registered engine):"]
    for e in d["engines"]:
        memory = f"{e['memory_mib'] / 1024:g} GiB" if e["memory_mib"] else "default"
        lines.append(
            f"  {e['class']:<20} engine {e['engine']} ({', '.join(e['kinds'])}); gpu "
            f"{e['gpu'] or 'none'}, cpu {e['cpu']:g} cores, memory {memory}, on the "
            f"{e['image']} image, containers {e['min_containers']}..{e['max_containers']}, "
            f"scaledown {e['scaledown_window']}s, timeout {e['timeout']}s, Modal retries "
            f"{e['retries']}, memory snapshot {'on' if e['memory_snapshot'] else 'off'}, "
            f"~${e['usd_per_hour']:.2f}/hour"
        )
    lines += ["", f"retries: owned by {d['retries_owner']}"]
    lines += ["", "volumes:"]
    for v in d["volumes"]:
        lines.append(f"  {v['name']} at {v['path']}: {v['use']}")
    lines += ["", "secrets (create with `modal secret create`, see docs/DEPLOY.md):"]
    for s in d["secrets"]:
        keys = ", ".join(s["required_keys"]) or "(no required keys)"
        users = "all functions" if "*" in s["used_by"] else ", ".join(s["used_by"])
        lines.append(f"  {s['name']}: {keys}; used by {users}")
    lines += ["", "settings shipped to the containers (non-secret):"]
    for key, value in sorted(d["deployed_settings"].items()):
        lines.append(f"  {key}={value}")
    if not d["deployed_settings"]:
        lines.append("  (none: all defaults)")
    for n in d["notes"]:
        lines.append(f"\nnote: {n}")
    for w in d["warnings"]:
        lines.append(f"\nwarning: {w}")
    for p in d["problems"]:
        lines.append(f"\nproblem: {p}")
    if d["problems"]:
        lines.append("\nfix the problems above before `dropreel deploy`.")
    return "\n".join(lines)


def deploy_argv(env: str | None = None) -> list[str]:
    argv = [sys.executable, "-m", "modal", "deploy", "-m", APP_MODULE]
    if env:
        argv += ["--env", env]
    return argv


def cmd_deploy(args: argparse.Namespace) -> int:
    from config.extras import require
    from config.settings import load_settings
    from infra.preflight import check_startup

    require("modal", "deploy")
    check_startup(load_settings(), local_engines=False)  # engines run in Modal's images
    d = describe()
    if args.dry_run:
        print(json.dumps(d, indent=2) if args.json else render(d))
        return 1 if d["problems"] else 0
    if d["problems"]:
        print(render(d), file=sys.stderr)
        return 2
    for w in d["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    argv = deploy_argv(args.env)
    print(f"running: modal deploy -m {APP_MODULE}" + (f" --env {args.env}" if args.env else ""))
    try:
        done = subprocess.run(argv, cwd=ROOT, check=False)
    except FileNotFoundError:
        print("dropreel: modal is not installed: pip install 'modal~=1.6'", file=sys.stderr)
        return 2
    if done.returncode != 0:
        print(
            "dropreel: modal deploy failed (see above). No token? run `modal token new`. "
            "Missing secret? see docs/DEPLOY.md, `modal secret create`.",
            file=sys.stderr,
        )
    return done.returncode


# ---- weights --------------------------------------------------------------------------------


def _pull_on_modal(
    engine: str, profiles: list[str] | None = None, env: str | None = None, wait: bool = False
) -> int:
    """Run `gpu.weights.pull` for `engine` (and `profiles`) inside Modal, into the Volume, in the
    Modal environment `env`. Returns at once with the call's id and how to follow it, or, with
    `wait`, blocks and prints what was pulled and its size."""
    import modal

    from gpu.errors import EngineError
    from infra.modal.plan import APP_NAME, WEIGHTS_VOLUME

    in_env = f" --env {env}" if env else ""
    try:
        fn = modal.Function.from_name(APP_NAME, "pull_weights", environment_name=env)
        if not wait:
            call = fn.spawn(engine, profiles)
        else:
            print(
                f"pulling {engine}'s weights inside Modal into the {WEIGHTS_VOLUME} Volume ...",
                file=sys.stderr,
            )
            result = fn.remote(engine, profiles)
    except modal.exception.NotFoundError:
        print(
            f"dropreel: the {APP_NAME!r} app is not deployed{in_env.replace(' --env', ' in')}: "
            f"run `dropreel deploy{in_env}` first",
            file=sys.stderr,
        )
        return 2
    except modal.exception.AuthError:
        print("dropreel: Modal refused the token: run `modal token new`", file=sys.stderr)
        return 2
    except (modal.exception.Error, EngineError) as err:
        print(f"dropreel: the weights were not pulled: {err}", file=sys.stderr)
        return 1
    if wait:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"pulling {engine}'s weights inside Modal into the {WEIGHTS_VOLUME} Volume "
        f"(call {call.object_id}); this command does not wait.\n"
        f"  follow it:   modal app logs {APP_NAME}{in_env}\n"
        f'  its result:  python -c "import modal; print(modal.FunctionCall.from_id('
        f"'{call.object_id}').get())\"\n"
        f"  then check:  dropreel weights pull {engine} --modal --wait{in_env} "
        "(fetches only what is missing)"
    )
    return 0
