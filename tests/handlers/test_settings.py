"""Settings: the generated signing key, and the client unit failed logins are counted by."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from handlers.auth import client_network
from handlers.settings import Settings


def test_signing_key_is_generated_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = settings.resolved_jwt_secret()
    assert len(first) >= 32
    assert stat.S_IMODE((tmp_path / "jwt-secret").stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path).resolved_jwt_secret() == first
    assert not list(tmp_path.glob("*.tmp"))


def test_a_short_signing_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "jwt-secret").write_text("short")
    with pytest.raises(ValueError, match="shorter than 32"):
        Settings(data_dir=tmp_path).resolved_jwt_secret()


def test_configured_signing_key_must_be_long() -> None:
    with pytest.raises(ValueError):
        Settings(jwt_secret="too short")  # type: ignore[arg-type]


@pytest.mark.parametrize(("host", "unit"), [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
    ("testclient", "testclient"),
])
def test_failed_logins_are_counted_per_address_or_ipv6_64(host: str, unit: str) -> None:
    assert client_network(host) == unit
