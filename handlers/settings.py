"""CommonWatt's configuration: one pydantic-settings object, read once from COMMONWATT_*."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every setting of the service; see the configuration table in README.md."""

    model_config = SettingsConfigDict(env_prefix="COMMONWATT_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where data files are kept.")
    database_url: str | None = Field(
        default=None, description="Registry database URL; an SQLite file in data_dir if unset."
    )
    jwt_secret: SecretStr | None = Field(
        default=None, min_length=32,
        description="Key that signs access tokens (32+ characters); generated if unset.",
    )
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    max_body_bytes: int = Field(default=64 * MIB, ge=1024, description="Largest request body.")
    yaml_max_nodes: int = Field(default=5_000_000, ge=1000)
    yaml_max_depth: int = Field(default=64, ge=8, le=1000)
    login_free_failures: int = Field(
        default=3, ge=1, description="Failed logins of one account from one address before "
        "each further failure makes that pair wait.")
    login_backoff_base_seconds: int = Field(
        default=2, ge=1, description="The first wait of an (account, address) pair; doubles "
        "with every further failure.")
    login_backoff_max_seconds: int = Field(
        default=900, ge=1, description="The longest wait of an (account, address) pair.")
    login_backoff_window_seconds: int = Field(
        default=86_400, ge=1, description="How long a pair's failures are counted.")
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_lockout_seconds: int = Field(
        default=300, ge=1, description="An address's counting window and lockout time.")
    telemetry_memory_limit_mb: int = Field(
        default=1024, ge=64, description="Memory DuckDB may use for telemetry.")
    telemetry_threads: int = Field(default=2, ge=1, le=64)
    telemetry_upload_max_bytes: int = Field(
        default=4096 * MIB, ge=1024, description="Largest CSV, NDJSON or Parquet upload.")
    telemetry_upload_max_rows: int = Field(
        default=10_000_000, ge=1, description="Most readings one upload may hold.")
    telemetry_max_future_seconds: int = Field(
        default=300, ge=0, description="How far in the future a reading's ts may be.")
    telemetry_compact_interval_seconds: float = Field(
        default=30.0, ge=0, description="How often day partitions are compacted; 0: never.")
    telemetry_compact_quiet_seconds: float = Field(
        default=120.0, ge=0, description="A day is compacted once unchanged this long.")
    broker_url: str = Field(
        default="", pattern=r"^((redis|rediss|amqp|amqps)://\S+)?$",
        description="Dramatiq broker: redis://... or amqp://...; empty: an embedded broker "
        "and worker inside the server process.")
    broker_namespace: str = Field(
        default="commonwatt", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Prefix of the broker's queue names (one per deployment).")
    server_runs_imports: bool = Field(
        default=True, description="Whether the server's own worker also runs bundle imports "
        "(with a broker URL, `commonwatt worker` processes run them too).")
    worker_threads: int = Field(default=2, ge=1, le=64,
                                description="Threads of a worker (the server's or a process).")
    export_job_min_rows: int = Field(
        default=1_000_000, ge=1, description="Telemetry exports of at least this many "
        "readings run as jobs (202 with the job's address).")
    job_result_ttl_seconds: int = Field(
        default=86_400, ge=1, description="How long a job's result file is served.")
    job_retention_days: int = Field(
        default=30, ge=1, description="Ended jobs without a result file are deleted after "
        "this many days.")
    job_sweep_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often the server's scheduler deletes expired "
        "result files and sends queued jobs' messages again.")
    job_resend_after_seconds: float = Field(
        default=300.0, gt=0, description="A job queued this long has its message sent again "
        "(a lost message loses no work; a repeated one does nothing).")
    webhook_allow_private_targets: bool = Field(
        default=False, description="Allow webhook endpoints on http:// and on loopback, "
        "private or link-local addresses (development and tests only).")
    webhook_timeout_seconds: float = Field(
        default=15.0, gt=0, le=60, description="How long a webhook delivery may take.")
    webhook_retry_schedule_seconds: list[Annotated[float, Field(ge=0)]] = Field(
        default=[0, 5, 300, 1800, 7200, 18000, 36000, 36000], min_length=1, max_length=20,
        description="Waits before each attempt of a webhook delivery (Standard Webhooks: "
        "immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); after the last, dead letter.")
    webhook_disable_after_seconds: float = Field(
        default=5 * 86_400, gt=0, description="An endpoint without a successful delivery "
        "for this long is disabled.")
    webhook_secret_overlap_seconds: float = Field(
        default=86_400, ge=0, description="How long a rotated webhook secret keeps signing "
        "beside the new one.")
    webhook_concurrency: int = Field(
        default=8, ge=1, le=64, description="Webhook deliveries a worker sends at once.")
    webhook_poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the server's scheduler looks for webhook "
        "deliveries whose retry time has come.")
    mqtt_url: str = Field(
        default="", pattern=r"^((mqtt|mqtts)://\S+)?$",
        description="MQTT broker the server subscribes to for device readings: "
        "mqtt://user:password@host:1883 or mqtts://... (TLS); empty: no MQTT.")
    mqtt_client_id: str = Field(
        default="commonwatt-server", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="The server's MQTT client id, fixed: its persistent session keeps what "
        "devices publish while the server is down.")
    mqtt_ca_file: Path | None = Field(
        default=None, description="CA certificates checking an mqtts:// broker; unset: the "
        "system's.")
    mqtt_broker_dir: Path | None = Field(
        default=None, description="Where `commonwatt mqtt sync` (and the server, at start and "
        "on every ingest-key change) writes Mosquitto's password, ACL and configuration "
        "files; unset: not written.")
    mqtt_broker_pid_file: Path | None = Field(
        default=None, description="Mosquitto's pid file: after writing its files, the "
        "broker is sent SIGHUP to reload them; unset: no reload.")
    mqtt_broker_secret: SecretStr | None = Field(
        default=None, min_length=16, description="Secret an HTTP-auth broker (EMQX) sends "
        "as X-Broker-Secret to the internal MQTT authentication and ACL endpoints; unset: "
        "those endpoints refuse every call.")
    mqtt_refusals_kept: int = Field(
        default=20, ge=1, le=1000, description="Refused MQTT messages kept per sensor.")
    mqtt_workers: int = Field(
        default=8, ge=1, le=64, description="Threads storing MQTT messages (each sensor's "
        "messages in order, by one of them).")
    balance_min_contributors: int = Field(
        default=3, ge=1, description="The fewest members contributing to an area's or the "
        "community's energy balance figures for plain members to see them.")
    graphql_max_depth: int = Field(
        default=10, ge=2, le=100, description="Deepest selection a GraphQL query may nest.")
    graphql_max_aliases: int = Field(
        default=20, ge=0, description="Most aliases one GraphQL query may use.")
    graphql_max_cost: int = Field(
        default=50_000, ge=1, description="Highest cost of one GraphQL query, reckoned from "
        "the schema before it runs (each field 1, lists times their `first`, readings and "
        "aggregates more).")
    graphql_expensive_cost: int = Field(
        default=2_000, ge=1, description="The cost from which a GraphQL query counts against "
        "its caller's rate of expensive queries.")
    graphql_expensive_per_minute: int = Field(
        default=30, ge=1, description="Expensive GraphQL queries one caller may run a minute; "
        "more answer 429 with Retry-After.")
    validate_responses: bool = Field(
        default=False, description="Check every response against the spec (on in tests)."
    )
    log_level: str = "INFO"
    trusted_proxies: str = Field(
        default="", description="Comma-separated proxy addresses or networks whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty: those headers are ignored.")
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest time a client may take to send a request's "
        "headers.")
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait for the next piece of a request body, "
        "and the grace period before body_min_bytes_per_second applies.")
    body_min_bytes_per_second: int = Field(
        default=16_384, ge=1, description="Slowest average rate a request body may arrive at.")
    keep_alive_timeout_seconds: int = Field(
        default=5, ge=1, description="How long an idle keep-alive connection stays open.")
    max_header_bytes: int = Field(
        default=16_384, ge=1024, description="Largest request line plus headers.")

    def trusted_proxy_list(self) -> list[str]:
        """The trusted proxies, one address or network per item."""
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    def resolved_database_url(self) -> str:
        """The registry database URL, defaulting to an SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'registry.sqlite3').resolve()}"

    def job_results_dir(self) -> Path:
        """Where jobs' result files (large exports) are kept until they expire."""
        return self.data_dir / "job-results"

    def telemetry_path(self) -> Path:
        """The telemetry DuckDB file."""
        return self.data_dir / "telemetry.duckdb"

    def resolved_jwt_secret(self) -> str:
        """The signing key: configured, or generated once into data_dir (mode 0600) and reused."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        import os
        import secrets

        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f"jwt-secret.{os.getpid()}.tmp")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(48))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(draft, path)  # atomic: a crash leaves no empty key behind
        secret = path.read_text(encoding="utf-8").strip()
        if len(secret) < 32:
            raise ValueError(f"{path} holds a signing key shorter than 32 characters; "
                             "delete it to have a new one generated")
        return secret
