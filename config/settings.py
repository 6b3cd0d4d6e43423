"""One settings object for the whole project.

Precedence is explicit: an argument passed in code > `DROPREEL_*` environment / `.env` > the
defaults below. Credentials come from the usual AWS variables (AWS_ACCESS_KEY_ID, ...) that boto3
reads itself, so they never pass through this object or any log.

`load_settings` is how commands read them: a `DROPREEL_*` name that is no setting (a typo such
as DROPREEL_WATCHROOT) or a value that does not parse (`5s` for a number) stops the command
with one line that names the variable and what to write instead, never a pydantic dump.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from config.kinds import JobKind

CallbackEvent = Literal["claimed", "progress", "done", "failed"]
"""The job events a callback URL can receive (docs/CALLBACKS.md)."""
SWEEP_WITH_EVENTS_SECONDS = 3600.0  # the default sweep when bucket events feed the index

MACHINE_LOCAL = frozenset(
    {
        "workers",
        "poll_seconds",
        "notify_log",
        "modal_dispatch",
        "hf_cache_dir",
        "weights_dir",
        "talking_head_device",
    }
)
"""Settings about the machine they are set on (its folders, its devices, its local worker pool).
`dropreel deploy` never ships them: a Modal container has its own Volume paths (the image's
HF_HOME and DROPREEL_WEIGHTS_DIR) and its own GPU. A new path or device setting belongs here."""


class Settings(BaseSettings):
    """Everything a deployment can tune. Field docs are the user-facing documentation."""

    model_config = SettingsConfigDict(
        env_prefix="DROPREEL_", env_file=".env", extra="ignore", validate_default=True
    )

    watch_root: str = Field(
        "file://./inbox",
        description="Where jobs are dropped: a folder (/data/inbox, ./inbox, file:///abs/path) "
        "or s3://bucket/prefix (R2 is s3:// with endpoint_url).",
    )
    endpoint_url: str | None = Field(
        None, description="S3 endpoint for R2, MinIO, Ceph (else AWS_ENDPOINT_URL or AWS)."
    )
    region: str | None = Field(None, description="S3 region (else AWS_REGION / auto for R2).")

    settle_seconds: float = Field(
        5.0, ge=0, description="A job is ready once its newest input is this old."
    )
    incomplete_grace_seconds: float = Field(
        300.0,
        ge=0,
        description="A folder whose files make no job (an image without audio, an unsupported "
        "type) is reported once its newest file is this old.",
    )
    lease_seconds: float = Field(
        120.0, gt=0, description="How long a claim lives without a heartbeat."
    )
    heartbeat_seconds: float | None = Field(
        None, gt=0, description="Lease renewal interval (default: a third of lease_seconds)."
    )
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts before a job is failed.")
    poll_seconds: float = Field(15.0, gt=0, description="Interval of `dropreel watch`.")
    sweep_seconds: float | None = Field(
        None,
        ge=0,
        description="How often a poller tick lists the whole watch root (the sweep) instead of "
        "only the folders the active index names; 0: every tick. Default: hourly when a webhook "
        "source is configured (events feed the index), else every tick.",
    )
    workers: int = Field(1, ge=1, le=64, description="Jobs rendered at once by a local watcher.")

    max_input_bytes: int = Field(200 * 1024**2, gt=0, description="Largest accepted input file.")
    max_prompt_bytes: int = Field(64 * 1024, gt=0, description="Largest accepted prompt.json.")
    max_image_pixels: int = Field(40_000_000, gt=0, description="Largest accepted image (w*h).")
    max_audio_seconds: float = Field(600.0, gt=0, description="Longest accepted audio.")
    max_video_seconds: float = Field(
        600.0, gt=0, description="Longest accepted source video (dubbing)."
    )
    max_video_pixels: int = Field(
        3840 * 2160, gt=0, description="Largest accepted source video frame (w*h; 4K)."
    )

    engine_talking_head: str = Field("preview", description="Engine for image + audio jobs.")
    engine_dubbing: str = Field("preview", description="Engine for video + audio jobs.")
    engine_text_to_video: str = Field("preview", description="Engine for prompt.json jobs.")
    engine_image_to_video: str = Field("preview", description="Engine for prompt.json + image.")
    engine_speech: str = Field(
        "speech-preview", description="Speech engine for script jobs (text to speech)."
    )

    notifier: str = Field("console", description="console, slack, or none.")
    notify_log: str | None = Field(
        None, description="Also append every notification as a JSON line to this file."
    )
    slack_bot_token: SecretStr | None = Field(None, description="Slack bot token (xoxb-...).")
    slack_channel: str | None = Field(None, description="Slack channel id or name.")
    slack_base_url: str | None = Field(None, description="Slack Web API base URL override.")
    slack_webhook_url: SecretStr | None = Field(None, description="Incoming-webhook URL.")
    link_expiry_seconds: int = Field(
        7 * 24 * 3600, gt=0, le=7 * 24 * 3600, description="Presigned MP4 link lifetime."
    )

    # --- Modal deployment (infra/modal/app.py; see docs/DEPLOY.md) ---
    modal_poll_seconds: float = Field(
        60.0, ge=10, description="Poller period on Modal (a modal.Period), in seconds."
    )
    modal_poll_cron: str | None = Field(
        None,
        description="Poller schedule as a cron line (UTC), e.g. '*/2 * * * *'; wins over "
        "modal_poll_seconds.",
    )
    modal_gpu: dict[str, str] = Field(
        default_factory=dict,
        description='GPU per engine, overriding the registry: {"ltx-video": "L40S", '
        '"infinitetalk": "H100"} (JSON in DROPREEL_MODAL_GPU).',
    )
    modal_max_containers: dict[str, int] = Field(
        default_factory=dict, description="Most containers at once per engine (default 4)."
    )
    modal_min_containers: dict[str, int] = Field(
        default_factory=dict,
        description="Containers kept warm per engine (default 0: costs money).",
    )
    modal_timeout_seconds: dict[str, int] = Field(
        default_factory=dict,
        description="Longest single render per engine before Modal stops it (default: 1 hour on "
        "a GPU, 30 minutes on CPU).",
    )
    modal_scaledown_seconds: int = Field(
        300, ge=2, le=3600, description="Idle seconds before an engine container shuts down."
    )
    modal_webhook_min_containers: int = Field(
        0, ge=0, le=10, description="Webhook containers kept warm (1 answers every event fast)."
    )
    modal_webhook_secret_keys: list[str] = Field(
        default_factory=list,
        description="Keys the dropreel-webhook Modal Secret must hold, e.g. "
        '["DROPREEL_WEBHOOK_R2_SECRET"]; it holds the secrets of the event sources you use.',
    )
    modal_hf_secret: bool = Field(
        False, description="Attach the dropreel-huggingface Secret (HF_TOKEN) for gated weights."
    )
    modal_dispatch: Literal["spawn", "local"] = Field(
        "spawn",
        description="How the Modal poller/webhook hand jobs to engine classes: spawn (deployed), "
        "or local (run the engine class in-process through .local(), for tests and debugging).",
    )
    gpu_prices: dict[str, float] = Field(
        default_factory=dict,
        description="USD per hour overriding config/costs.py estimates: per GPU type, CPU "
        '(per core) and MEMORY (per GiB), e.g. {"H100": 3.95, "CPU": 0.047, "MEMORY": 0.008}.',
    )
    hf_cache_dir: str | None = Field(
        None,
        description="Hugging Face cache for engine weights (`dropreel weights pull` fills it; "
        "renders read it offline). Default: the Hugging Face cache (HF_HUB_CACHE).",
    )
    min_audio_seconds: float = Field(
        0.5, ge=0, description="Shortest accepted audio (shorter clips are refused)."
    )
    slack_attempts: int = Field(
        4, ge=1, le=10, description="Tries per Slack call on errors other than rate limits."
    )
    slack_max_wait_seconds: float = Field(
        300.0, ge=0, description="Longest total wait on Slack rate limits (429 Retry-After)."
    )
    slack_upload_poster: bool = Field(
        True, description="Upload the poster frame to Slack (files_upload_v2) with the message."
    )
    slack_progress_seconds: float = Field(
        15.0,
        ge=0,
        description="Least seconds between two edits of a job's Slack message while it renders "
        "(each edit is also a new step: 25, 50, 75 %).",
    )
    callback_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="URL that receives a signed JSON POST per job event (docs/CALLBACKS.md); a "
        "job's prompt.json callback_url wins.",
    )
    callback_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key that signs every callback (X-Dropreel-Signature)."
    )
    callback_events: list[CallbackEvent] = Field(
        default_factory=lambda: ["claimed", "progress", "done", "failed"],
        description='Events sent to the callback URL, e.g. ["done", "failed"].',
    )
    callback_hosts: list[str] = Field(
        default_factory=list,
        description='Hosts a prompt.json callback_url may name, e.g. ["n8n.example.com", '
        '".example.org"] (a leading dot: any subdomain); empty: any host.',
    )
    callback_attempts: int = Field(
        4, ge=1, le=10, description="Tries per callback on 5xx, 408, 429 and network errors."
    )
    callback_timeout_seconds: float = Field(
        10.0, gt=0, le=60, description="How long one callback POST may take."
    )
    public_base_url: str | None = Field(
        None,
        description="Public URL of the watch root when the bucket is public: Slack then shows "
        "the poster as an image block and links the MP4 without expiry.",
    )
    weights_dir: str = Field(
        "~/.cache/dropreel/weights",
        description="Where `dropreel weights pull` puts model weights and engines read them.",
    )
    talking_head_profile: str = Field(
        "balanced",
        description="Default talking-head profile: fast, balanced, quality or low_vram "
        "(prompt.json `profile` overrides it per job).",
    )
    talking_head_fast_lora: str = Field(
        "lightx2v", description="LoRA of the fast profile: lightx2v (4 steps) or fusionx (8 steps)."
    )
    talking_head_fp8: bool | None = Field(
        None,
        description="Store the talking-head transformer's weights in fp8 (less memory, faster); "
        "unset: only when the default profile is fast. An fp8 worker serves only its default "
        "profile.",
    )
    talking_head_device: str | None = Field(
        None, description="Device for the talking-head engine (default: cuda if present, else cpu)."
    )
    talking_head_compile: bool = Field(
        False, description="torch.compile the transformer blocks (CUDA; slower first render)."
    )
    talking_head_reanchor_seconds: float = Field(
        0.0,
        ge=0,
        description="Restart long talking-head videos from the portrait about every N seconds "
        "(0: never): no drift, but a visible jump at each restart (docs/TALKING_HEAD.md).",
    )
    parallel_segment_seconds: float = Field(
        30.0,
        ge=5,
        le=600,
        description="Longest segment of a talking head rendered in parallel: longer audio is cut "
        "at pauses into segments up to this long, each on its own GPU (docs/TALKING_HEAD.md).",
    )
    parallel_gpus_per_job: int = Field(
        8,
        ge=1,
        le=64,
        description="Segments of one job rendered at once (1: one after another, still cut).",
    )
    parallel_gpus: int = Field(
        16,
        ge=1,
        le=256,
        description="Segments rendered at once across all jobs (locally: the segment pool's "
        "size; on Modal: the most segment calls one trigger has out).",
    )
    parallel_crossfade_seconds: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="Cross-fade between parallel segments (0: a plain cut inside the pause).",
    )

    @field_validator("watch_root")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if "://" not in value and value.strip():  # a plain path is a local folder
            return Path(value).expanduser().absolute().as_uri()
        if not value.startswith(("file://", "s3://")):
            raise ValueError(
                f"watch_root {value!r} must start with file:// or s3:// (R2: s3:// plus endpoint_url)"
            )
        return value

    @property
    def sweep_interval(self) -> float:
        """Seconds between sweeps (see `sweep_seconds`)."""
        if self.sweep_seconds is not None:
            return self.sweep_seconds
        return SWEEP_WITH_EVENTS_SECONDS if self.webhook_configured else 0.0

    @property
    def webhook_configured(self) -> bool:
        """True when some webhook source is set, so bucket events reach dropreel."""
        return bool(
            self.webhook_sns_topic_arns
            or self.webhook_eventbridge_secret
            or self.webhook_s3_token
            or self.webhook_r2_secret
        )

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_seconds or self.lease_seconds / 3

    def engine_for(self, kind: JobKind) -> str:
        """The configured default engine for a job kind."""
        return {
            JobKind.TALKING_HEAD: self.engine_talking_head,
            JobKind.DUBBING: self.engine_dubbing,
            JobKind.TEXT_TO_VIDEO: self.engine_text_to_video,
            JobKind.IMAGE_TO_VIDEO: self.engine_image_to_video,
        }[JobKind(kind)]

    webhook_sns_topic_arns: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SNS topic ARNs whose messages the webhook accepts (in env: comma-separated "
        "or a JSON list); messages from any other topic are refused.",
    )
    webhook_eventbridge_secret: SecretStr | None = Field(
        None,
        description="Value of the X-Dropreel-Secret header sent by the EventBridge API "
        "destination connection.",
    )
    webhook_s3_token: SecretStr | None = Field(
        None, description="Bearer token MinIO / Ceph RGW send with raw S3 event JSON."
    )
    webhook_r2_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key shared with the R2 forwarding Worker."
    )
    webhook_max_body_bytes: int = Field(
        1024 * 1024, gt=0, le=16 * 1024**2, description="Largest accepted webhook request body."
    )
    webhook_max_skew_seconds: float = Field(
        300.0, gt=0, description="Signed timestamps older or newer than this are refused (R2)."
    )

    @field_validator("webhook_sns_topic_arns", mode="before")
    @classmethod
    def _split_arns(cls, value: object) -> object:
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)  # the JSON list `dropreel deploy` ships
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


PREFIX = "DROPREEL_"


class BadSettings(ValueError):
    """The settings cannot be used: an unknown DROPREEL_* name or a value that does not parse."""


def env_name(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def unknown_names(names: Iterable[str]) -> list[str]:
    """One line per DROPREEL_* name that is no setting, with the nearest real name if any."""
    known = [env_name(field) for field in Settings.model_fields]
    lines = []
    for name in sorted(set(names)):
        if not name.upper().startswith(PREFIX) or name.upper() in known:
            continue
        near = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.75)
        hint = f"did you mean {near[0]}?" if near else "the README lists every setting"
        lines.append(f"{name} is not a dropreel setting: {hint}")
    return lines


def _dotenv_names(path: str = ".env") -> list[str]:
    if not Path(path).is_file():
        return []
    from dotenv import dotenv_values

    return list(dotenv_values(path))


def _shown(field: str, value: Any) -> str:
    annotation = (
        str(Settings.model_fields[field].annotation) if field in Settings.model_fields else ""
    )
    return "(hidden)" if "SecretStr" in annotation else repr(value)


def readable(err: ValidationError, overrides: Mapping[str, Any] = {}) -> str:
    """A pydantic ValidationError as one line per setting: name, value, what is wrong."""
    lines = []
    for item in err.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        label = field if field in overrides else env_name(field)
        message = str(item["msg"]).removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        lines.append(f"{label}={_shown(field, item.get('input'))}: {message}")
    return "; ".join(lines)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings for a command: `overrides` (command-line values; None means not given) over the
    environment and .env. Raises BadSettings with one readable line on any mistake."""
    given = {k: v for k, v in overrides.items() if v is not None}
    mistakes = unknown_names([*(os.environ if environ is None else environ), *_dotenv_names()])
    if mistakes:
        raise BadSettings("; ".join(mistakes))
    try:
        return Settings(**given)
    except ValidationError as err:
        raise BadSettings(readable(err, given)) from None
    except SourceError as err:  # a JSON setting (dict or list) that is not JSON
        field = str(err).partition('field "')[2].partition('"')[0]
        raise BadSettings(
            f"{env_name(field) if field else 'a setting'} is not valid JSON: write it as JSON, "
            'e.g. {"ltx-video": "L40S"} or ["A", "B"]'
        ) from None
