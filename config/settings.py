"""One settings object for the whole project.

Precedence is explicit: an argument passed in code > `DROPREEL_*` environment / `.env` > the
defaults below. Credentials come from the usual AWS variables (AWS_ACCESS_KEY_ID, ...) that boto3
reads itself, so they never pass through this object or any log.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

JOB_KINDS = ("talking_head", "text_to_video", "image_to_video")


class Settings(BaseSettings):
    """Everything a deployment can tune. Field docs are the user-facing documentation."""

    model_config = SettingsConfigDict(
        env_prefix="DROPREEL_", env_file=".env", extra="ignore", validate_default=True
    )

    watch_root: str = Field(
        "file://./inbox",
        description="Where jobs are dropped: file:///abs/path, s3://bucket/prefix (R2 is s3:// "
        "with endpoint_url).",
    )
    endpoint_url: str | None = Field(
        None, description="S3 endpoint for R2, MinIO, Ceph (else AWS_ENDPOINT_URL or AWS)."
    )
    region: str | None = Field(None, description="S3 region (else AWS_REGION / auto for R2).")

    settle_seconds: float = Field(
        5.0, ge=0, description="A job is ready once its newest input is this old."
    )
    lease_seconds: float = Field(
        120.0, gt=0, description="How long a claim lives without a heartbeat."
    )
    heartbeat_seconds: float | None = Field(
        None, gt=0, description="Lease renewal interval (default: a third of lease_seconds)."
    )
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts before a job is failed.")
    poll_seconds: float = Field(15.0, gt=0, description="Interval of `dropreel watch`.")
    workers: int = Field(1, ge=1, le=64, description="Jobs rendered at once by a local watcher.")

    max_input_bytes: int = Field(200 * 1024**2, gt=0, description="Largest accepted input file.")
    max_prompt_bytes: int = Field(64 * 1024, gt=0, description="Largest accepted prompt.json.")
    max_image_pixels: int = Field(40_000_000, gt=0, description="Largest accepted image (w*h).")
    max_audio_seconds: float = Field(600.0, gt=0, description="Longest accepted audio.")

    engine_talking_head: str = Field("preview", description="Engine for image + audio jobs.")
    engine_text_to_video: str = Field("preview", description="Engine for prompt.json jobs.")
    engine_image_to_video: str = Field("preview", description="Engine for prompt.json + image.")

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

    @field_validator("watch_root")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("file://", "s3://")):
            raise ValueError(
                f"watch_root {value!r} must start with file:// or s3:// (R2: s3:// plus endpoint_url)"
            )
        return value

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_seconds or self.lease_seconds / 3

    def engine_for(self, kind: str) -> str:
        return getattr(self, f"engine_{kind}")

    webhook_sns_topic_arns: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SNS topic ARNs whose messages the webhook accepts (comma-separated in env); "
        "messages from any other topic are refused.",
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
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
