"""Mosquitto's files, written from the registry: password file (hashes only), ACL and config;
then the broker is told to reload them (SIGHUP)."""

from __future__ import annotations

import getpass
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import Engine

from handlers.settings import Settings
from storage.broker_hash import broker_hash
from storage.db import session_scope
from storage.mqtt import BrokerAccount, broker_accounts, usable_in_broker

LOG = logging.getLogger("commonwatt.mqtt")
READINGS_TOPIC = "commonwatt/sensors/{sensor_id}/readings"
REFUSALS_TOPIC = "commonwatt/sensors/{sensor_id}/refusals"
SUBSCRIPTION = READINGS_TOPIC.format(sensor_id="+")
DEFAULT_PORT = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerAddress:
    """Where the server reaches the broker, and as whom."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def broker_address(url: str) -> BrokerAddress:
    """The parts of COMMONWATT_MQTT_URL (user and password percent-decoded)."""
    parts = urlsplit(url)
    return BrokerAddress(host=parts.hostname or "127.0.0.1",
                         port=parts.port or DEFAULT_PORT[parts.scheme],
                         tls=parts.scheme == "mqtts",
                         username=unquote(parts.username) if parts.username else None,
                         password=unquote(parts.password) if parts.password else None)


def password_file(accounts: list[BrokerAccount], server: BrokerAddress | None) -> str:
    """Mosquitto's password file: `username:$7$...`, one line per device, and the server's."""
    lines = [f"{account.sensor_id}:{account.password_hash}" for account in accounts
             if account.password_hash]
    if server and server.username and server.password and usable_in_broker(server.username):
        lines.append(f"{server.username}:{broker_hash(server.password)}")
    return "".join(line + "\n" for line in lines)


def acl_file(server: BrokerAddress | None) -> str:
    """Mosquitto's ACL: each device writes its readings topic and reads its refusals; the
    server reads every readings topic and writes every refusals topic."""
    lines = ["# Written by commonwatt from the registry; changes here are overwritten.",
             "pattern write " + READINGS_TOPIC.format(sensor_id="%u"),
             "pattern read " + REFUSALS_TOPIC.format(sensor_id="%u")]
    if server and server.username and usable_in_broker(server.username):
        lines += ["", f"user {server.username}", f"topic read {SUBSCRIPTION}",
                  "topic write " + REFUSALS_TOPIC.format(sensor_id="+")]
    return "\n".join(lines) + "\n"


def broker_config(directory: Path, *, port: int, host: str, pid_file: Path | None) -> str:
    """A mosquitto.conf serving the files of `directory` on host:port (plain MQTT; a TLS
    listener adds certfile and keyfile lines). Run by the account that writes its files."""
    directory = directory.resolve()
    lines = [
        "# Written by `commonwatt mqtt sync`; changes here are overwritten.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"listener {port} {host}",
        f"password_file {directory / 'passwd'}",
        f"acl_file {directory / 'acl'}",
        # The server's persistent session keeps what devices publish while it is down.
        "persistence true",
        f"persistence_location {directory}/",
        "autosave_interval 60",
        "max_queued_messages 1000000",
        "max_inflight_messages 1000",
        f"user {getpass.getuser()}",
    ]
    if pid_file is not None:
        lines.append(f"pid_file {pid_file.resolve()}")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    """Replace a file atomically (the broker never reads half a file), mode 0600."""
    draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(draft, path)


def write_broker_files(settings: Settings, accounts: list[BrokerAccount]) -> Path:
    """Write passwd, acl and mosquitto.conf into the broker directory; its path."""
    assert settings.mqtt_broker_dir is not None
    directory = settings.mqtt_broker_dir
    directory.mkdir(parents=True, exist_ok=True)
    server = broker_address(settings.mqtt_url) if settings.mqtt_url else None
    _write(directory / "passwd", password_file(accounts, server))
    _write(directory / "acl", acl_file(server))
    _write(directory / "mosquitto.conf", broker_config(
        directory, port=server.port if server else DEFAULT_PORT["mqtt"],
        host=server.host if server else "127.0.0.1", pid_file=settings.mqtt_broker_pid_file))
    return directory


def reload_broker(pid_file: Path | None) -> bool:
    """Send SIGHUP to the broker named by its pid file; whether one was signalled."""
    if pid_file is None:
        return False
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as error:
        LOG.warning("the MQTT broker of %s was not reloaded: %s", pid_file, error)
        return False
    return True


def sync_broker(settings: Settings, engine: Engine) -> tuple[int, bool]:
    """Write the broker's files from the registry and reload it: the devices let in, and
    whether the broker was signalled. Nothing when no broker directory is set."""
    if settings.mqtt_broker_dir is None:
        return 0, False
    with session_scope(engine, read_only=True) as session:
        accounts = broker_accounts(session)
    write_broker_files(settings, accounts)
    return len(accounts), reload_broker(settings.mqtt_broker_pid_file)
