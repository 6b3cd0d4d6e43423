"""The Modal deployment as data: what `infra/modal/app.py` declares, computed from settings.

The app module reads this plan top to bottom (images, volume, secrets, functions, one class
per registered engine); `dropreel deploy --dry-run` prints it; tests check it against the Modal
objects. Nothing here imports modal or touches the network, so the plan can be built and
checked anywhere.

Each registered engine becomes one Modal class. Its GPU is, in order: `DROPREEL_MODAL_GPU`
for that engine (that GPU only), then the registry's `EngineSpec.gpu` followed by its
`gpu_fallbacks` (Modal takes the first it has free); an engine with neither runs on CPU. Each
GPU is checked against the engine's `gpu_memory_gib`.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from config.costs import UnknownGpu, parse_gpu, usd_per_hour
from config.settings import MACHINE_LOCAL, Settings
from gpu.registry import ENGINES, EngineSpec, get_spec

MINUTES = 60
HOURS = 60 * MINUTES
MODAL_MAX_TIMEOUT = 24 * HOURS

APP_NAME = "dropreel"
PYTHON_VERSION = "3.11"
SOURCE_PACKAGES = ("config", "handlers", "gpu", "infra", "triggers")

WEIGHTS_VOLUME = "dropreel-weights"
WEIGHTS_PATH = "/weights"
HF_HOME = f"{WEIGHTS_PATH}/huggingface"
KERNELS_CACHE = "/tmp/dropreel-kernels"

STORAGE_SECRET = "dropreel-storage"
SLACK_SECRET = "dropreel-slack"
WEBHOOK_SECRET = "dropreel-webhook"
HF_SECRET = "dropreel-huggingface"
CALLBACK_SECRET = "dropreel-callbacks"

POLL_TIMEOUT = 5 * MINUTES
WEBHOOK_TIMEOUT = 1 * MINUTES
WEBHOOK_MAX_INPUTS = 50
WEBHOOK_MAX_CONTAINERS = 10
WEIGHTS_TIMEOUT = 3 * HOURS
WEIGHTS_CORES = 8.0  # Xet's high-performance mode downloads and hashes on every core
WEIGHTS_MEMORY_MIB = 16 * 1024
WEIGHTS_ENV = {"HF_XET_HIGH_PERFORMANCE": "1"}  # huggingface_hub >= 1.0 downloads through Xet
DEFAULT_MAX_CONTAINERS = 4
DEFAULT_GPU_TIMEOUT = 1 * HOURS
DEFAULT_CPU_TIMEOUT = 30 * MINUTES
CPU_ENGINE_CORES = 2.0
CPU_ENGINE_MEMORY_MIB = 4 * 1024
GPU_ENGINE_CORES = 8.0
MIN_GPU_ENGINE_MEMORY_MIB = 16 * 1024
ENGINE_RETRIES = 0
RETRY_OWNER = (
    "dropreel's lease take-back: the trigger records each spawned call in its job's lease; a "
    "lease that expires while its call waits in Modal's queue, starts or runs is kept, one whose "
    "call died is taken back (the old call cancelled) and attempt n+1 dispatched, up to "
    "DROPREEL_MAX_ATTEMPTS; Modal's own retries are off (a retried call would carry the old "
    "lease and end as lost)"
)

# Modal's default reservation is 0.125 core and 128 MiB (https://modal.com/docs/guide/resources;
# `cpu=` in physical cores, which also sets OMP/MKL/OPENBLAS thread counts, `memory=` in MiB).
# An engine container needs cores for decoding, the VAE's CPU work and the x264 encode, and host
# memory to stage its checkpoint on the way to the GPU: as much as the GPU holds.
GPU_MEMORY_GIB: dict[str, int] = {
    "T4": 16,
    "L4": 24,
    "A10": 24,
    "A10G": 24,
    "L40S": 48,
    "A100": 40,
    "A100-40GB": 40,
    "A100-80GB": 80,
    "H100": 80,
    "H200": 141,
    "B200": 180,
}

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@dataclass(frozen=True)
class SecretPlan:
    """A named Modal Secret, the keys it must hold, and which functions get it."""

    name: str
    required_keys: tuple[str, ...]
    used_by: tuple[str, ...]
    create_hint: str


@dataclass(frozen=True)
class EnginePlan:
    """One engine's Modal class."""

    engine: str
    class_name: str
    kinds: tuple[str, ...]
    gpu: str | None
    cpu: float
    memory: int  # MiB
    image: str  # "gpu" | "cpu"
    timeout: int
    min_containers: int
    max_containers: int
    scaledown_window: int
    retries: int
    memory_snapshot: bool
    usd_per_hour: float  # on `gpu`, with its CPU and memory
    gpu_fallbacks: tuple[str, ...] = ()

    @property
    def hardware(self) -> str:
        return self.gpu or "cpu"

    @property
    def gpus(self) -> tuple[str, ...]:
        """The GPU types Modal may give the class, in order of preference."""
        return (self.gpu, *self.gpu_fallbacks) if self.gpu else ()

    @property
    def gpu_request(self) -> str | list[str] | None:
        """`gpu=` for Modal: one type, or the list to take the first free one of."""
        return list(self.gpus) if self.gpu_fallbacks else self.gpu


@dataclass(frozen=True)
class Packages:
    """Pinned pip requirements for the two images, read from pyproject.toml."""

    watcher: tuple[str, ...] = ()
    webhook: tuple[str, ...] = ()
    torch: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    gpu_extras: tuple[str, ...] = ()

    @property
    def cpu_image(self) -> tuple[str, ...]:
        """The watcher, the webhook, and the Hub client (Xet included) for the weights pull."""
        hub = tuple(p for p in self.engines if _dist(p) == "huggingface_hub")
        return self.watcher + self.webhook + hub

    @property
    def gpu_image(self) -> tuple[str, ...]:
        return self.watcher + self.engines + self.gpu_extras


@dataclass(frozen=True)
class DeployPlan:
    app_name: str
    watch_root: str
    poll_schedule: tuple[str, str]  # ("period", "60.0") | ("cron", "*/2 * * * *")
    poll_timeout: int
    webhook_max_inputs: int
    webhook_min_containers: int
    webhook_max_containers: int
    webhook_timeout: int
    scaledown_window: int
    engines: tuple[EnginePlan, ...]
    secrets: tuple[SecretPlan, ...]
    volumes: dict[str, str]
    image_env: dict[str, str]
    deployed_settings: dict[str, str]
    packages: Packages
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def engine(self, name: str) -> EnginePlan:
        for plan in self.engines:
            if plan.engine == name:
                return plan
        raise KeyError(name)

    def secrets_for(self, function: str) -> tuple[SecretPlan, ...]:
        return tuple(s for s in self.secrets if function in s.used_by or "*" in s.used_by)

    @property
    def schedule_text(self) -> str:
        kind, value = self.poll_schedule
        return f"every {float(value):g}s" if kind == "period" else f"cron '{value}' (UTC)"


def class_name(engine: str) -> str:
    """'ltx-video' -> 'EngineLtxVideo' (a valid, global Python name Modal can import)."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", engine) if p]
    name = "Engine" + "".join(p[:1].upper() + p[1:] for p in parts)
    if not name.isidentifier() or name == "Engine":
        raise ValueError(f"engine name {engine!r} cannot become a Modal class name")
    return name


def gpu_memory_gib(gpu: str) -> int:
    """All the memory of a GPU request ('H100:2' -> 160); 0 for a type not in the table."""
    name, count = parse_gpu(gpu)
    return GPU_MEMORY_GIB.get(name, 0) * count


def host_memory_mib(gpus: tuple[str, ...]) -> int:
    """Host memory for an engine container: the largest GPU's own memory (a checkpoint that
    fits the GPU fits here while it loads, and before a memory snapshot), at least
    MIN_GPU_ENGINE_MEMORY_MIB; CPU engines a little."""
    if not gpus:
        return CPU_ENGINE_MEMORY_MIB
    return max(max(gpu_memory_gib(g) for g in gpus) * 1024, MIN_GPU_ENGINE_MEMORY_MIB)


def small_gpu_warnings(spec: EngineSpec, gpus: tuple[str, ...]) -> list[str]:
    """A GPU with less memory than the engine's documented need (docs/DEPLOY.md)."""
    need = spec.gpu_memory_gib
    return [
        f"engine {spec.name}: {gpu} has {gpu_memory_gib(gpu)} GiB, less than the about {need} "
        "GiB its most demanding profile needs (docs/DEPLOY.md); jobs may run out of GPU memory"
        for gpu in gpus
        if need and GPU_MEMORY_GIB.get(parse_gpu(gpu)[0]) and gpu_memory_gib(gpu) < need
    ]


def engine_plan(
    spec: EngineSpec, settings: Settings, problems: list[str], warnings: list[str]
) -> EnginePlan:
    name = spec.name
    chosen = settings.modal_gpu.get(name)
    gpu = (chosen if chosen is not None else spec.gpu) or None
    fallbacks = spec.gpu_fallbacks if chosen is None and gpu else ()
    cpu = GPU_ENGINE_CORES if gpu else CPU_ENGINE_CORES
    try:
        for each in fallbacks:
            usd_per_hour(each, overrides=settings.gpu_prices)  # a known type, or UnknownGpu
        memory = host_memory_mib((gpu, *fallbacks) if gpu else ())
        price = usd_per_hour(gpu, cpu, settings.gpu_prices, memory)
        warnings += small_gpu_warnings(spec, (gpu, *fallbacks) if gpu else ())
    except UnknownGpu as err:
        problems.append(f"engine {name}: {err}")
        price, memory = 0.0, MIN_GPU_ENGINE_MEMORY_MIB
    default_timeout = DEFAULT_GPU_TIMEOUT if gpu else DEFAULT_CPU_TIMEOUT
    declared = getattr(spec, "max_render_seconds", None)
    timeout = settings.modal_timeout_seconds.get(name) or declared or default_timeout
    if not 10 <= timeout <= MODAL_MAX_TIMEOUT:
        problems.append(
            f"engine {name}: timeout {timeout}s is outside Modal's 10s..24h; fix "
            "DROPREEL_MODAL_TIMEOUT_SECONDS"
        )
        timeout = min(max(timeout, 10), MODAL_MAX_TIMEOUT)
    max_containers = settings.modal_max_containers.get(name, DEFAULT_MAX_CONTAINERS)
    min_containers = settings.modal_min_containers.get(name, 0)
    if max_containers < 1 or min_containers < 0 or min_containers > max_containers:
        problems.append(
            f"engine {name}: need 0 <= min_containers ({min_containers}) <= max_containers "
            f"({max_containers}) and max_containers >= 1"
        )
    return EnginePlan(
        engine=name,
        class_name=class_name(name),
        kinds=tuple(spec.kinds),
        gpu=gpu,
        cpu=cpu,
        memory=memory,
        image="gpu" if gpu else "cpu",
        timeout=int(timeout),
        min_containers=min_containers,
        max_containers=max(max_containers, 1),
        scaledown_window=settings.modal_scaledown_seconds,
        retries=ENGINE_RETRIES,
        memory_snapshot=True,
        usd_per_hour=price,
        gpu_fallbacks=tuple(fallbacks),
    )


def is_secret(name: str) -> bool:
    """Credentials travel in named Modal Secrets, never in the deployed settings."""
    return "SecretStr" in repr(Settings.model_fields[name].annotation)


def env_name(name: str) -> str:
    return f"DROPREEL_{name.upper()}"


def env_text(value: object) -> str:
    """A setting's value as the environment text `Settings()` parses back to the same value:
    JSON for lists, dicts and booleans, plain text for the rest."""
    return json.dumps(value) if isinstance(value, dict | list | bool) else str(value)


def deployed_settings(settings: Settings) -> dict[str, str]:
    """The settings that ship to the containers, as DROPREEL_* variables: those that differ
    from the defaults, except credentials (named Secrets carry those) and machine-local ones
    (`config.settings.MACHINE_LOCAL`: the containers use the Volume paths and their own GPU)."""
    defaults = Settings.model_construct()
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        if name in MACHINE_LOCAL or is_secret(name):
            continue
        value = getattr(settings, name)
        if value is None or value == getattr(defaults, name, None):
            continue
        env[env_name(name)] = env_text(value)
    return env


def not_shipped_notes(settings: Settings) -> list[str]:
    """Settings of this machine that are set here and stay here."""
    defaults = Settings.model_construct()
    return [
        f"{env_name(name)} is a setting of this machine and is not shipped: the containers use "
        "the weights Volume and their own GPU"
        for name in sorted(MACHINE_LOCAL & settings.model_fields_set)
        if getattr(settings, name) != getattr(defaults, name, None)
    ]


def uncarried_secret_warnings(settings: Settings, secret_keys: set[str]) -> list[str]:
    """Credentials set here that no Modal Secret carries, so the containers lack them."""
    return [
        f"{env_name(name)} is set here but no Modal Secret carries it, so the containers do not "
        "have it: add it to a Secret (docs/DEPLOY.md; webhook secrets: list it in "
        "DROPREEL_MODAL_WEBHOOK_SECRET_KEYS)"
        for name in Settings.model_fields
        if is_secret(name)
        and getattr(settings, name) is not None
        and env_name(name) not in secret_keys
    ]


def read_packages(pyproject: Path = PYPROJECT) -> Packages:
    """Pins from pyproject.toml. Inside a Modal container the file is absent (images are
    already built there), so this returns empty lists."""
    if not pyproject.is_file():
        return Packages()
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    engines = tuple(extras.get("engines", ()))
    torch = tuple(p for p in engines if _dist(p) == "torch")
    return Packages(
        watcher=tuple(project.get("dependencies", ())),
        webhook=tuple(extras.get("webhook", ())),
        torch=torch,
        engines=tuple(p for p in engines if _dist(p) != "torch"),
        gpu_extras=tuple(extras.get("gpu", ())),
    )


def _dist(requirement: str) -> str:
    return re.split(r"[<>=~!\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("-", "_")


def build_plan(settings: Settings, engines: dict[str, EngineSpec] | None = None) -> DeployPlan:
    get_spec("preview")  # make sure the built-in registrations ran
    specs = engines if engines is not None else ENGINES
    problems: list[str] = []
    warnings: list[str] = []
    if not settings.watch_root.startswith("s3://"):
        problems.append(
            f"DROPREEL_WATCH_ROOT is {settings.watch_root!r}: Modal containers cannot see a local "
            "folder; set it to s3://bucket/prefix (R2: plus DROPREEL_ENDPOINT_URL)"
        )
    if settings.notifier == "slack" and not settings.slack_channel:
        problems.append("DROPREEL_NOTIFIER=slack needs DROPREEL_SLACK_CHANNEL (a channel id)")
    if settings.notifier not in ("console", "slack", "none"):
        problems.append(f"DROPREEL_NOTIFIER={settings.notifier!r}: use console, slack or none")

    plans = tuple(engine_plan(specs[name], settings, problems, warnings) for name in sorted(specs))
    names = [p.class_name for p in plans]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"two engines become the same Modal class {dup}: rename one")

    if settings.modal_poll_cron:
        schedule = ("cron", settings.modal_poll_cron.strip())
        if len(schedule[1].split()) != 5:
            problems.append(
                f"DROPREEL_MODAL_POLL_CRON={schedule[1]!r} must have five fields "
                "(minute hour day month weekday)"
            )
    else:
        schedule = ("period", str(float(settings.modal_poll_seconds)))

    engine_classes = tuple(p.class_name for p in plans)
    secrets = [
        SecretPlan(
            STORAGE_SECRET,
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            ("*",),
            "the bucket's access key (R2: an R2 API token's key id and secret)",
        ),
        SecretPlan(
            WEBHOOK_SECRET,
            tuple(settings.modal_webhook_secret_keys),
            ("webhook",),
            "the shared token/HMAC secret bucket notifications carry (docs/WEBHOOK.md)",
        ),
    ]
    if settings.notifier == "slack":
        secrets.append(
            SecretPlan(
                SLACK_SECRET,
                ("DROPREEL_SLACK_BOT_TOKEN",),
                ("poll", "webhook", *engine_classes),
                "the Slack bot token (xoxb-...)",
            )
        )
    if settings.callback_secret is not None:
        secrets.append(
            SecretPlan(
                CALLBACK_SECRET,
                ("DROPREEL_CALLBACK_SECRET",),
                ("poll", "webhook", *engine_classes),
                "the key that signs callbacks (docs/CALLBACKS.md)",
            )
        )
    if settings.modal_hf_secret:
        secrets.append(
            SecretPlan(
                HF_SECRET,
                ("HF_TOKEN",),
                ("pull_weights", *engine_classes),
                "a Hugging Face read token (gated models)",
            )
        )

    warnings += uncarried_secret_warnings(settings, {k for s in secrets for k in s.required_keys})

    return DeployPlan(
        app_name=APP_NAME,
        watch_root=settings.watch_root,
        poll_schedule=schedule,
        poll_timeout=POLL_TIMEOUT,
        webhook_max_inputs=WEBHOOK_MAX_INPUTS,
        webhook_min_containers=settings.modal_webhook_min_containers,
        webhook_max_containers=WEBHOOK_MAX_CONTAINERS,
        webhook_timeout=WEBHOOK_TIMEOUT,
        scaledown_window=settings.modal_scaledown_seconds,
        engines=plans,
        secrets=tuple(secrets),
        volumes={WEIGHTS_PATH: WEIGHTS_VOLUME},
        image_env={
            "HF_HOME": HF_HOME,
            "DROPREEL_WEIGHTS_DIR": f"{WEIGHTS_PATH}/dropreel",
            "PYTHONUNBUFFERED": "1",
            # Hub attention kernels are fetched on first use; the weights Volume is read-only
            # for engine classes, so they are cached in the container (docs/ENGINES.md).
            "KERNELS_CACHE": KERNELS_CACHE,
        },
        deployed_settings=deployed_settings(settings),
        packages=read_packages(),
        problems=tuple(problems),
        warnings=tuple(warnings),
        notes=tuple(not_shipped_notes(settings)),
    )
