"""`dropreel serve` (the webhook under uvicorn) and `dropreel setup-notifications`.

uvicorn's limits for a server that faces the internet: an idle keep-alive connection is closed
after KEEP_ALIVE_SECONDS, request headers are bounded (MAX_HEADER_BYTES) and must be complete
within a deadline (`infra/cli/header_deadline.py`), and the webhook itself times out a body that
stops arriving (`triggers/delivery.py`, 408).
"""

from __future__ import annotations

import argparse
import logging

from config.extras import require
from config.settings import Settings, load_settings

log = logging.getLogger("dropreel")

KEEP_ALIVE_SECONDS = 5
MAX_HEADER_BYTES = 16 * 1024


def add_webhook_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the webhook (bucket events start jobs at once)")
    p.add_argument("url", nargs="?", help="watch root (else DROPREEL_WATCH_ROOT)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, help="jobs rendered at once")
    p.add_argument("--settle", type=float, help="settle window in seconds")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "setup-notifications",
        help="point a bucket's events at the webhook (S3 via SNS or "
        "EventBridge; --r2 prints the Cloudflare steps)",
    )
    p.add_argument(
        "url", nargs="?", help="watch root s3://bucket/prefix (else DROPREEL_WATCH_ROOT)"
    )
    p.add_argument("--webhook", required=True, help="the webhook's public base URL, https://...")
    p.add_argument("--via", choices=("sns", "eventbridge"), default="sns")
    p.add_argument("--topic-name", default="dropreel-events", help="SNS topic to create or reuse")
    p.add_argument(
        "--role-arn",
        help="EventBridge: an existing role allowed to invoke the API "
        "destination (else one is created)",
    )
    p.add_argument("--r2", action="store_true", help="print the R2 queue/notification/Worker steps")
    p.set_defaults(func=cmd_setup_notifications)


def _settings(**overrides) -> Settings:
    return load_settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    for package in ("fastapi", "uvicorn"):
        require(package, "serve")
    import uvicorn

    from infra.preflight import check_startup
    from infra.wiring import build_webhook_app

    settings = _settings(watch_root=args.url, workers=args.workers, settle_seconds=args.settle)
    check_startup(settings)
    app = build_webhook_app(settings)
    enabled = [source.name for source in app.state.sources if source.enabled]
    print(
        f"webhook for {app.state.intake.rt.storage.url} on http://{args.host}:{args.port} "
        f"(sources enabled: {', '.join(enabled) or 'none: set DROPREEL_WEBHOOK_* first'})",
        flush=True,
    )
    uvicorn.Server(server_config(app, args.host, args.port)).run()
    return 0


def server_config(app, host: str, port: int):
    """uvicorn's configuration for `dropreel serve`, with the limits above."""
    import uvicorn

    from infra.cli.header_deadline import HeaderDeadlineProtocol

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=HeaderDeadlineProtocol,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )


def cmd_setup_notifications(args: argparse.Namespace) -> int:
    from infra.storage.bucket_events import SetupError, r2_steps, setup_eventbridge, setup_sns
    from triggers.intake import watch_location

    settings = _settings(watch_root=args.url)
    bucket, prefix = watch_location(settings.watch_root)
    if bucket is None:
        raise SetupError("setup-notifications needs an s3://bucket/prefix watch root")
    if args.r2:
        print(r2_steps(bucket, prefix, args.webhook))
        return 0
    import boto3

    session = boto3.session.Session(region_name=settings.region)
    s3 = session.client("s3", endpoint_url=settings.endpoint_url)
    if args.via == "sns":
        result = setup_sns(
            s3,
            session.client("sns"),
            bucket,
            prefix,
            args.webhook,
            args.topic_name,
            sts=session.client("sts"),
        )
    else:
        secret = settings.webhook_eventbridge_secret
        result = setup_eventbridge(
            s3,
            session.client("events"),
            session.client("iam"),
            bucket,
            prefix,
            args.webhook,
            secret.get_secret_value() if secret else "",
            role_arn=args.role_arn,
        )
    print(result.summary())
    return 0
