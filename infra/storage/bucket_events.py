"""Point a bucket's event notifications at the dropreel webhook (`dropreel setup-notifications`).

AWS S3, two ways:
- SNS: a topic (signing with SHA256) whose policy lets this bucket publish, an HTTPS subscription to
  `<webhook>/events/sns`, and a bucket notification for ObjectCreated under the prefix.
- EventBridge: bucket -> EventBridge switched on, a connection holding the X-Dropreel-Secret
  header, an API destination for `<webhook>/events/eventbridge`, a role EventBridge may use to
  call it, and a rule for "Object Created" under the prefix.

Each step is idempotent: running it again updates what it made (entries are named `dropreel-*`)
and leaves the bucket's other notification entries alone. Cloudflare R2 has no API for this in
boto3; `r2_steps` prints the wrangler commands instead. Clients are passed in, so tests point
them at moto's server.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from handlers.errors import DropreelError

log = logging.getLogger(__name__)

SECRET_HEADER_NAME = "X-Dropreel-Secret"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class SetupError(DropreelError):
    """The notification set-up could not be done; the message says which step and why."""

    permanent = True


@dataclass
class SetupResult:
    via: str
    bucket: str
    prefix: str
    endpoint: str
    arns: dict[str, str]

    def summary(self) -> str:
        lines = [f"s3://{self.bucket}/{self.prefix} now notifies {self.endpoint} via {self.via}:"]
        lines += [f"  {name}: {arn}" for name, arn in self.arns.items()]
        if self.via == "sns":
            lines.append(
                "Set DROPREEL_WEBHOOK_SNS_TOPIC_ARNS="
                f"{self.arns['topic']} on the webhook (the subscription confirms itself once "
                "the webhook is running with it)."
            )
        else:
            lines.append(
                "The webhook must run with the same DROPREEL_WEBHOOK_EVENTBRIDGE_SECRET "
                "that was used here."
            )
        return "\n".join(lines)


def _entry_id(bucket: str, prefix: str) -> str:
    return "dropreel-" + hashlib.sha256(f"{bucket}/{prefix}".encode()).hexdigest()[:12]


def _check_endpoint(url: str, path: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SetupError(f"{url!r} is not a URL: give the webhook's base URL, https://host")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise SetupError(f"{url!r} must use https:// (plain http is only allowed on loopback)")
    base = url.rstrip("/")
    return base if base.endswith(path) else base + path


def _fail(step: str, err: ClientError) -> SetupError:
    code = err.response.get("Error", {}).get("Code", "error")
    message = err.response.get("Error", {}).get("Message", "")
    return SetupError(f"{step} failed ({code}): {message}. Check the credentials' permissions.")


def _merge_bucket_notifications(
    s3: Any, bucket: str, entry_id: str, topic: dict | None, eventbridge: bool
) -> None:
    try:
        current = s3.get_bucket_notification_configuration(Bucket=bucket)
    except ClientError as err:
        raise _fail(f"reading the notification set-up of bucket {bucket!r}", err) from err
    current.pop("ResponseMetadata", None)
    topics = [t for t in current.get("TopicConfigurations", []) if t.get("Id") != entry_id]
    if topic is not None:
        topics.append(topic)
    config = {k: v for k, v in current.items() if k != "TopicConfigurations"}
    if topics:
        config["TopicConfigurations"] = topics
    if eventbridge:
        config["EventBridgeConfiguration"] = {}
    try:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    except ClientError as err:
        raise _fail(f"setting the notifications of bucket {bucket!r}", err) from err


def _account(sts: Any | None) -> str | None:
    if sts is None:
        return None
    try:
        return sts.get_caller_identity()["Account"]
    except Exception as err:  # the policy still works without the account condition
        log.info("could not read the account id (%s); leaving SourceAccount out", err)
        return None


def setup_sns(
    s3: Any,
    sns: Any,
    bucket: str,
    prefix: str,
    webhook_url: str,
    topic_name: str = "dropreel-events",
    sts: Any | None = None,
) -> SetupResult:
    """Bucket -> SNS topic -> HTTPS subscription to the webhook's /events/sns."""
    endpoint = _check_endpoint(webhook_url, "/events/sns")
    entry = _entry_id(bucket, prefix)
    try:
        topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
        policy = json.loads(
            sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"].get("Policy") or "{}"
        )
        statements = [s for s in policy.get("Statement", []) if s.get("Sid") != entry]
        condition: dict[str, Any] = {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}}
        account = _account(sts)
        if account:
            condition["StringEquals"] = {"aws:SourceAccount": account}
        statements.append(
            {
                "Sid": entry,
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": condition,
            }
        )
        sns.set_topic_attributes(
            TopicArn=topic_arn,
            AttributeName="Policy",
            AttributeValue=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        sns.set_topic_attributes(  # sign with SHA256 (SignatureVersion 2), not SHA1
            TopicArn=topic_arn, AttributeName="SignatureVersion", AttributeValue="2"
        )
        subscription = sns.subscribe(
            TopicArn=topic_arn,
            Protocol=urlsplit(endpoint).scheme,
            Endpoint=endpoint,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
    except ClientError as err:
        raise _fail(f"setting up SNS topic {topic_name!r}", err) from err
    rule: dict[str, Any] = {
        "Id": entry,
        "TopicArn": topic_arn,
        "Events": ["s3:ObjectCreated:*"],
    }
    if prefix:
        rule["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    _merge_bucket_notifications(s3, bucket, entry, rule, eventbridge=False)
    return SetupResult(
        "sns", bucket, prefix, endpoint, {"topic": topic_arn, "subscription": subscription}
    )


def _upsert(create: Any, update: Any, name: str, **kwargs: Any) -> dict:
    try:
        return create(Name=name, **kwargs)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
            raise
        return update(Name=name, **kwargs)


def setup_eventbridge(
    s3: Any,
    events: Any,
    iam: Any,
    bucket: str,
    prefix: str,
    webhook_url: str,
    secret: str,
    role_arn: str | None = None,
    name: str = "dropreel",
) -> SetupResult:
    """Bucket -> EventBridge rule -> API destination (secret header) -> /events/eventbridge."""
    endpoint = _check_endpoint(webhook_url, "/events/eventbridge")
    if not secret:
        raise SetupError(
            "set DROPREEL_WEBHOOK_EVENTBRIDGE_SECRET first: the API destination sends it in the "
            f"{SECRET_HEADER_NAME} header and the webhook checks it"
        )
    _merge_bucket_notifications(s3, bucket, _entry_id(bucket, prefix), None, eventbridge=True)
    step = "creating the EventBridge connection"
    try:
        auth = {"ApiKeyAuthParameters": {"ApiKeyName": SECRET_HEADER_NAME, "ApiKeyValue": secret}}
        connection = _upsert(
            events.create_connection,
            events.update_connection,
            f"{name}-connection",
            AuthorizationType="API_KEY",
            AuthParameters=auth,
        )["ConnectionArn"]
        step = "creating the EventBridge API destination"
        destination = _upsert(
            events.create_api_destination,
            events.update_api_destination,
            f"{name}-webhook",
            ConnectionArn=connection,
            InvocationEndpoint=endpoint,
            HttpMethod="POST",
            InvocationRateLimitPerSecond=100,
        )["ApiDestinationArn"]
        if role_arn is None:
            step = "creating the IAM role EventBridge uses"
            role_arn = _ensure_role(iam, f"{name}-eventbridge-invoke", destination)
        step = "creating the EventBridge rule"
        pattern: dict[str, Any] = {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [bucket]}},
        }
        if prefix:
            pattern["detail"]["object"] = {"key": [{"prefix": prefix}]}
        rule = events.put_rule(
            Name=f"{name}-{bucket}"[:64], EventPattern=json.dumps(pattern), State="ENABLED"
        )["RuleArn"]
        events.put_targets(
            Rule=f"{name}-{bucket}"[:64],
            Targets=[{"Id": "dropreel-webhook", "Arn": destination, "RoleArn": role_arn}],
        )
    except ClientError as err:
        raise _fail(step, err) from err
    return SetupResult(
        "eventbridge",
        bucket,
        prefix,
        endpoint,
        {"connection": connection, "api_destination": destination, "role": role_arn, "rule": rule},
    )


def _ensure_role(iam: Any, role_name: str, destination_arn: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
            raise
        arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    invoke = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "events:InvokeApiDestination",
                "Resource": destination_arn,
            }
        ],
    }
    iam.put_role_policy(
        RoleName=role_name, PolicyName="invoke-dropreel-webhook", PolicyDocument=json.dumps(invoke)
    )
    return arn


def r2_steps(bucket: str, prefix: str, webhook_url: str, queue: str = "dropreel-events") -> str:
    """The Cloudflare commands for R2 -> Queue -> forwarding Worker -> /events/r2."""
    endpoint = _check_endpoint(webhook_url, "/events/r2")
    prefix_flag = f" --prefix '{prefix}'" if prefix else ""
    return "\n".join(
        [
            f"R2 bucket {bucket!r} -> Queue {queue!r} -> Worker -> {endpoint}",
            "",
            "1. Create the queue:",
            f"     npx wrangler queues create {queue}",
            "2. Send the bucket's object-create events to it:",
            f"     npx wrangler r2 bucket notification create {bucket} "
            f"--event-type object-create --queue {queue}{prefix_flag}",
            "3. Deploy the forwarding Worker (infra/r2_worker):",
            "     cd infra/r2_worker",
            f"     # in wrangler.toml: queue = {queue!r}, DROPREEL_WEBHOOK_URL = {endpoint!r}",
            "     npx wrangler secret put DROPREEL_R2_SECRET   # paste a long random secret",
            "     npx wrangler deploy",
            "4. Run the webhook with the same secret:",
            "     DROPREEL_WEBHOOK_R2_SECRET=<the same secret>",
        ]
    )
