"""dropreel on Modal: a scheduled poller and a webhook on a small CPU image, one autoscaled class
per registered engine on a GPU image, model weights on a Volume.

Deploy with `dropreel deploy` (it runs `modal deploy -m infra.modal.app`); see what would be
deployed with `dropreel deploy --dry-run`. Everything configurable comes from the same settings
as a local watcher (`DROPREEL_*`, `.env`) through `infra/modal/plan.py`; the non-secret ones are
shipped to the containers in a settings Secret, credentials come from named Modal Secrets.

Engine classes: Modal imports a class by its global name, so each engine's class is built by
`engine_class()` from the registry, named `Engine<Name>` and bound in this module's globals.
One class per engine (rather than one class with an engine parameter) because the GPU type,
image, timeout and autoscaling limits are per class in Modal, and per engine here.
"""

from __future__ import annotations

import modal

from config.settings import Settings
from infra.modal import plan as modal_plan
from infra.modal.plan import EnginePlan

PLAN = modal_plan.build_plan(Settings())

app = modal.App(PLAN.app_name)

# ## Images
# The watcher (poller, webhook) and the weights pull: no torch, starts in a second or two.

cpu_image = (
    modal.Image.debian_slim(python_version=modal_plan.PYTHON_VERSION)
    .uv_pip_install(*PLAN.packages.cpu_image)
    .env(PLAN.image_env)
    .add_local_python_source(*modal_plan.SOURCE_PACKAGES)
)

# The engines: the CUDA build of torch (PyPI's Linux wheels), diffusers, transformers,
# accelerate, and `kernels`, which loads prebuilt attention kernels (SageAttention 2 for the
# talking-head `fast` profile) from the Hugging Face kernel hub on first use; where none loads,
# the engine falls back to PyTorch's SDPA and status.json says so (docs/ENGINES.md).

gpu_image = (
    modal.Image.debian_slim(python_version=modal_plan.PYTHON_VERSION)
    .uv_pip_install(*PLAN.packages.torch)
    .uv_pip_install(*PLAN.packages.gpu_image)
    .env(PLAN.image_env)
    .add_local_python_source(*modal_plan.SOURCE_PACKAGES)
)

# ## Volume: the Hugging Face cache (HF_HOME) and the plain-folder weights (DROPREEL_WEIGHTS_DIR),
# filled once by `dropreel weights pull ENGINE --modal`.

weights = modal.Volume.from_name(modal_plan.WEIGHTS_VOLUME, create_if_missing=True)
volumes = {modal_plan.WEIGHTS_PATH: weights}  # pull_weights writes
engine_volumes = {modal_plan.WEIGHTS_PATH: weights.with_mount_options(read_only=True)}

# ## Secrets: credentials from named Secrets (`modal secret create`, docs/DEPLOY.md), and the
# deployed settings (watch root, engines, limits; never a credential) from this machine's.

deployed_settings = modal.Secret.from_dict(PLAN.deployed_settings)


def secrets_for(function: str) -> list[modal.Secret]:
    named = [
        modal.Secret.from_name(s.name, required_keys=list(s.required_keys))
        for s in PLAN.secrets_for(function)
    ]
    return [*named, deployed_settings]


def poll_schedule() -> modal.Period | modal.Cron:
    kind, value = PLAN.poll_schedule
    return modal.Cron(value) if kind == "cron" else modal.Period(seconds=float(value))


# ## The poller: one tick per period, never two at once (a single container, one input).


@app.function(
    image=cpu_image,
    secrets=secrets_for("poll"),
    schedule=poll_schedule(),
    max_containers=1,
    timeout=PLAN.poll_timeout,
)
def poll() -> dict:
    from infra.modal import runtime as modal_runtime
    from infra.modal.calls import ModalCalls

    return modal_runtime.poll_once(ENGINE_CLASSES, ModalCalls())


# ## The webhook: bucket notifications in; verify, claim, spawn, answer.


@app.function(
    image=cpu_image,
    secrets=secrets_for("webhook"),
    min_containers=PLAN.webhook_min_containers,
    max_containers=PLAN.webhook_max_containers,
    scaledown_window=PLAN.scaledown_window,
    timeout=PLAN.webhook_timeout,
)
@modal.concurrent(max_inputs=PLAN.webhook_max_inputs)
@modal.asgi_app()
def webhook():
    from infra.modal import runtime as modal_runtime
    from infra.modal.calls import ModalCalls

    return modal_runtime.webhook_app(ENGINE_CLASSES, ModalCalls())


# ## Weights: `dropreel weights pull ENGINE [--profile P] --modal` runs the same pull as a local
# one, here, on a CPU container, with the Volume as its target, committed after each repository
# (a pull cut short keeps what it finished). The command returns at once unless `--wait`.


@app.function(
    image=cpu_image,
    cpu=modal_plan.WEIGHTS_CORES,
    memory=modal_plan.WEIGHTS_MEMORY_MIB,
    volumes=volumes,
    secrets=[*secrets_for("pull_weights"), modal.Secret.from_dict(modal_plan.WEIGHTS_ENV)],
    timeout=modal_plan.WEIGHTS_TIMEOUT,
)
def pull_weights(engine: str, profiles: list[str] | None = None) -> dict:
    from gpu.weights import engine_spec, pull
    from infra.modal import runtime as modal_runtime

    modal_runtime.configure_logging()

    def commit(_repo: dict) -> None:
        if not modal.is_local():
            weights.commit()

    result = pull(engine_spec(engine), profiles, after_each=commit)
    commit(result)  # what a `convert` step wrote after the last repository
    return result


# ## Engines: one class per registered engine, loaded once per container.


def engine_class(plan: EnginePlan) -> modal.Cls:
    class Engine:
        @modal.enter(snap=True)
        def import_libraries(self) -> None:
            from infra.modal import runtime as modal_runtime

            modal_runtime.preload(plan)

        @modal.enter(snap=False)
        def load(self) -> None:
            from infra.modal import runtime as modal_runtime

            spawn = ENGINE_CLASSES[plan.engine]().render_segment.spawn  # this class's calls
            self.worker = modal_runtime.EngineWorker(plan, spawn_segment=spawn)

        @modal.method()
        def run(self, ticket: dict) -> dict:
            return self.worker.run(ticket, modal.current_function_call_id())

        @modal.method()
        def render_segment(self, ticket: dict) -> dict:
            """One segment of a long talking head rendered in parallel (handlers/segments.py)."""
            return self.worker.render_segment(ticket)

    Engine.__name__ = Engine.__qualname__ = plan.class_name
    Engine.__doc__ = f"Renders {', '.join(plan.kinds)} jobs with the {plan.engine} engine."
    return app.cls(
        image=gpu_image if plan.image == "gpu" else cpu_image,
        gpu=plan.gpu_request,  # the engine's GPU, then those that also serve (plan.py)
        cpu=plan.cpu,
        memory=plan.memory,
        volumes=engine_volumes,  # engines only read weights
        secrets=secrets_for(plan.class_name),
        timeout=plan.timeout,
        min_containers=plan.min_containers,
        max_containers=plan.max_containers,
        scaledown_window=plan.scaledown_window,
        retries=plan.retries,  # 0: dropreel's lease take-back owns retries (plan.RETRY_OWNER)
        enable_memory_snapshot=plan.memory_snapshot,
    )(Engine)


ENGINE_CLASSES: dict[str, modal.Cls] = {plan.engine: engine_class(plan) for plan in PLAN.engines}
globals().update({plan.class_name: ENGINE_CLASSES[plan.engine] for plan in PLAN.engines})
