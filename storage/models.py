"""SQLModel tables of the registry: communities and everything they hold, users and tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def json_column(nullable: bool = False) -> Any:
    """A JSON column; a fresh Column object for every table field."""
    return Column(JSON, nullable=nullable)


class Community(SQLModel, table=True):
    """An energy community and the bundle-level data it was imported with."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=128, unique=True, index=True)
    name: str
    description: str | None = None
    legal: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    links: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    contact: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    settings: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    operators: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    # Properties of `community` the schema does not name, kept in their order.
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    # Bundle envelope: version, schema_version, metadata and unknown top-level properties.
    envelope: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class TopologyNode(SQLModel, table=True):
    """A grid node (substation, transformer, feeder) of a community's topology."""

    __table_args__ = (UniqueConstraint("community_id", "node_id"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE", index=True)
    node_id: str
    type: str
    name: str | None = None
    parent: str | None = None
    operator_id: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    position: int = 0


class Area(SQLModel, table=True):
    """A regulatory area of a community: one GSE primary-substation boundary."""

    __table_args__ = (UniqueConstraint("community_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE", index=True)
    key: str
    name: str
    boundary_source: str
    boundary_id: str
    topology: list[str] = Field(default_factory=list, sa_column=json_column())
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    position: int = 0


class Member(SQLModel, table=True):
    """A participant of a community, linked to a user account by `user_id`."""

    __table_args__ = (
        UniqueConstraint("community_id", "key"),
        UniqueConstraint("community_id", "user_id"),
        Index("ix_member_user_status", "user_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE", index=True)
    key: str
    user_id: str
    name: str
    type: str | None = None
    role: str
    area: str
    status: str
    did: str | None = Field(default=None, unique=True)
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    position: int = 0
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class DeliveryPoint(SQLModel, table=True):
    """A grid connection point (POD, CUPS, ...) held by a member."""

    __table_args__ = (
        UniqueConstraint("community_id", "dp_id"),
        Index("ix_deliverypoint_dp_id", "dp_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE", index=True)
    member_id: int = Field(foreign_key="member.id", ondelete="CASCADE", index=True)
    dp_id: str
    type: str
    description: str | None = None
    address: str | None = None
    tariff: str | None = None
    active: bool = True
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    position: int = 0


class Asset(SQLModel, table=True):
    """An asset (pv, meter, storage, ...) owned by a member; meters carry a sensor id."""

    __table_args__ = (
        UniqueConstraint("community_id", "key"),
        UniqueConstraint("community_id", "sensor_id"),
        Index("ix_asset_sensor_id", "sensor_id"),
        Index("ix_asset_community_type", "community_id", "asset_type"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE", index=True)
    member_id: int = Field(foreign_key="member.id", ondelete="CASCADE", index=True)
    key: str
    asset_type: str
    name: str
    sensor_id: str | None = None
    meter_type: str | None = None
    pod: str | None = None
    # Every property of the asset as the bundle gave it (name and sensor_id included).
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    position: int = 0


class User(SQLModel, table=True):
    """A platform account; its email is the `user_id` members are linked by."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    password_hash: str
    role: str = "user"
    is_active: bool = True
    created_at: datetime = Field(default_factory=utc_now)


class ApiToken(SQLModel, table=True):
    """A long-lived API token; only the SHA-256 of its secret is kept."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    name: str
    token_hash: str = Field(unique=True, index=True)
    prefix: str
    created_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None


class RevokedAccessToken(SQLModel, table=True):
    """A logged-out JWT, by its `jti`, kept until it would have expired anyway."""

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(index=True)


class LoginThrottle(SQLModel, table=True):
    """Failed-login counter for one account or one client address."""

    key: str = Field(primary_key=True, max_length=400)
    failures: int = 0
    window_started_at: datetime = Field(default_factory=utc_now)
    blocked_until: datetime | None = None


class SensorIngestKey(SQLModel, table=True):
    """A sensor's ingest key for device pushes; only the SHA-256 of its secret is kept."""

    __table_args__ = (UniqueConstraint("community_id", "sensor_id"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE", index=True)
    sensor_id: str = Field(max_length=256, index=True)
    key_hash: str = Field(max_length=64)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utc_now)
    # The same secret as an MQTT broker checks it (Mosquitto's PBKDF2-SHA512 `$7$...`),
    # made when the key is created: the plaintext is never known again. None for keys
    # created before MQTT came (rotate them to use MQTT).
    broker_hash: str | None = Field(default=None, max_length=200)


class MqttRefusal(SQLModel, table=True):
    """A message a sensor published over MQTT that was refused; the newest few per sensor."""

    id: int | None = Field(default=None, primary_key=True)
    sensor_id: str = Field(max_length=256, index=True)
    # The community the device's key writes to; None when the sensor had no usable key.
    community_id: int | None = Field(default=None, foreign_key="community.id",
                                     ondelete="CASCADE")
    code: str = Field(max_length=64)
    detail: str = Field(max_length=500)
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column())
    received_at: datetime = Field(default_factory=utc_now)


class Job(SQLModel, table=True):
    """A background job: the row is the truth, a broker message only wakes a worker up."""

    __table_args__ = (Index("ix_job_status_kind", "status", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    status: str = Field(default="queued", max_length=16)
    community_key: str | None = Field(default=None, max_length=128, index=True)
    requested_by_id: int | None = Field(default=None, index=True)
    requested_by: str | None = Field(default=None, max_length=320)
    # What the work needs (never shown by the API); cleared once the job ends.
    arguments: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    progress: int = 0
    progress_message: str | None = Field(default=None, max_length=500)
    result: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    problem: dict[str, Any] | None = Field(default=None, sa_column=json_column(nullable=True))
    log: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column())
    result_file: str | None = Field(default=None, max_length=500)
    result_expires_at: datetime | None = None
    cancel_requested: bool = False
    claimed_by: str | None = Field(default=None, max_length=300)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utc_now)
    sent_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class WebhookEndpoint(SQLModel, table=True):
    """Where a community's events are sent; the secret signs them (Standard Webhooks)."""

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE", index=True)
    url: str = Field(max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] = Field(default_factory=list, sa_column=json_column())
    # Kept as given: signing needs it. Shown once, at creation (or rotation).
    secret: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utc_now)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=500)
    # After a rotation the old secret signs beside the new one until it expires.
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = None
    last_success_at: datetime | None = None
    # The first failure since the last success: too old, and the endpoint is disabled.
    failing_since: datetime | None = None


class WebhookOutbox(SQLModel, table=True):
    """An event, written in the transaction of the change it tells about."""

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE", index=True)
    event_type: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=json_column())
    created_at: datetime = Field(default_factory=utc_now)
    dispatched_at: datetime | None = Field(default=None, index=True)


class WebhookDelivery(SQLModel, table=True):
    """One event to one endpoint: attempts until delivered or given up."""

    __table_args__ = (UniqueConstraint("outbox_id", "endpoint_id"),)

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="webhookoutbox.id", ondelete="CASCADE", index=True)
    endpoint_id: int = Field(foreign_key="webhookendpoint.id", ondelete="CASCADE", index=True)
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default_factory=utc_now, index=True)
    response_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = None
    # The worker sending it now (host:pid): a stopped process's leases are released.
    leased_by: str | None = Field(default=None, max_length=300)
    last_attempt_at: datetime | None = None


class WebhookAttempt(SQLModel, table=True):
    """One try of a delivery: what the endpoint answered, how fast, or what went wrong."""

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhookdelivery.id", ondelete="CASCADE", index=True)
    attempted_at: datetime = Field(default_factory=utc_now)
    response_status: int | None = None
    latency_ms: int = 0
    response_body: str | None = Field(default=None, max_length=1024)
    error: str | None = Field(default=None, max_length=500)


class Dashboard(SQLModel, table=True):
    """A saved dashboard: its owner's, and readable by a community's members when shared."""

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    community_id: int | None = Field(default=None, foreign_key="community.id",
                                     ondelete="CASCADE", index=True)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class DashboardWidget(SQLModel, table=True):
    """A chart or card of a dashboard, at its place on the dashboard's grid."""

    id: int | None = Field(default=None, primary_key=True)
    dashboard_id: int = Field(foreign_key="dashboard.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=16)
    title: str | None = Field(default=None, max_length=200)
    x: int
    y: int
    w: int
    h: int
    window: str = Field(max_length=16)
    sensors: list[str] = Field(default_factory=list, sa_column=json_column())
    channel: str | None = Field(default=None, max_length=64)
    minimum: float | None = None
    maximum: float | None = None
    community_key: str | None = Field(default=None, max_length=128)


class ThresholdRule(SQLModel, table=True):
    """A rule on a channel's readings (a threshold, or silence) of one sensor or of every
    sensor of a community."""

    __tablename__ = "threshold_rule"

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=200)
    kind: str = Field(default="threshold", max_length=16)
    sensor_id: str | None = Field(default=None, max_length=256)
    channel: str = Field(max_length=64)
    operator: str | None = Field(default=None, max_length=16)
    threshold: float | None = None
    threshold_high: float | None = None
    for_seconds: int = 0
    silence_seconds: int | None = None
    cooldown_seconds: int = 0
    enabled: bool = True
    actions: list[str] = Field(default_factory=list, sa_column=json_column())
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class RuleEvent(SQLModel, table=True):
    """A rule's firing and the reading that fired it (a silence: the last reading heard)."""

    __tablename__ = "rule_event"
    __table_args__ = (Index("ix_rule_event_rule_sensor", "rule_id", "sensor_id"),)

    id: int | None = Field(default=None, primary_key=True)
    rule_id: int = Field(foreign_key="threshold_rule.id", ondelete="CASCADE", index=True)
    community_id: int = Field(foreign_key="community.id", ondelete="CASCADE")
    sensor_id: str = Field(max_length=256)
    channel: str = Field(max_length=64)
    reading_ts: datetime
    value: float | None = None
    fired_at: datetime = Field(default_factory=utc_now)
