"""The MQTT door's registry side: Mosquitto hashes, who the broker lets in, kept refusals."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sqlmodel import Session, select

from storage import mqtt
from storage.broker_hash import broker_hash, broker_hash_matches
from storage.models import Member
from storage.sensors import delete_ingest_key, rotate_ingest_key
from tests.environment import skip_or_fail


def test_our_hash_has_mosquittos_form_and_checks_mosquittos_own(tmp_path: Path) -> None:
    hashed = broker_hash("cwi_device-secret")
    assert hashed.startswith("$7$101$") and len(hashed.split("$")) == 5
    assert broker_hash_matches(hashed, "cwi_device-secret")
    assert not broker_hash_matches(hashed, "cwi_device-secreT")
    assert broker_hash("same") != broker_hash("same")  # salted
    assert not broker_hash_matches("$6$not$ours", "same")
    assert not broker_hash_matches("garbage", "same")
    binary = shutil.which("mosquitto_passwd")
    if binary is None:
        skip_or_fail("mosquitto_passwd is not installed")
    assert binary is not None
    subprocess.run([binary, "-b", "-c", str(tmp_path / "passwd"), "dev", "cwi_x"], check=True)
    theirs = (tmp_path / "passwd").read_text().strip().split(":", 1)[1]
    assert broker_hash_matches(theirs, "cwi_x") and not broker_hash_matches(theirs, "cwi_y")


def test_accounts_follow_keys_and_active_holdings(session: Session,
                                                  registry: dict[str, int]) -> None:
    _, first = rotate_ingest_key(session, community_id=registry["a"], sensor_id="sa1")
    rotate_ingest_key(session, community_id=registry["a"], sensor_id="sa2")
    rotate_ingest_key(session, community_id=registry["b"], sensor_id="sb1")
    session.commit()
    accounts = mqtt.broker_accounts(session)
    assert [(account.sensor_id, account.community_id) for account in accounts] == [
        ("sa1", registry["a"]), ("sa2", registry["a"]), ("sb1", registry["b"])]
    assert all(account.password_hash and account.password_hash.startswith("$7$")
               for account in accounts)
    # A rotated key: the account's hash is the new key's, the old one no longer matches.
    _, second = rotate_ingest_key(session, community_id=registry["a"], sensor_id="sa1")
    session.commit()
    account = mqtt.device_account(session, sensor_id="sa1")
    assert account is not None and account.password_hash is not None
    assert broker_hash_matches(account.password_hash, second)
    assert not broker_hash_matches(account.password_hash, first)
    # Revoked: gone; a suspended holder: every sensor of that community gone.
    delete_ingest_key(session, community_id=registry["a"], sensor_id="sa2")
    member = session.exec(select(Member).where(Member.community_id == registry["b"])).one()
    member.status = "suspended"
    session.add(member)
    session.commit()
    assert [account.sensor_id for account in mqtt.broker_accounts(session)] == ["sa1"]
    assert mqtt.device_account(session, sensor_id="sb1") is None


def test_ids_no_broker_can_take_are_left_out() -> None:
    assert mqtt.usable_in_broker("inverter-7.a_b")
    for sensor_id in ("", "a/b", "a+b", "a#", "a:b", "a b"):
        assert not mqtt.usable_in_broker(sensor_id)


def test_only_the_newest_refusals_of_a_sensor_are_kept(session: Session,
                                                       registry: dict[str, int]) -> None:
    for index in range(5):
        mqtt.record_refusal(session, sensor_id="sa1", community_id=registry["a"],
                            code="bad_request",
                            detail=f"refusal {index}", errors=[], keep=3)
    mqtt.record_refusal(session, sensor_id="sb1", community_id=None, code="readings_refused",
                        detail="other",
                        errors=[{"index": 0, "code": "invalid_value", "message": "x"}], keep=3)
    session.commit()
    kept = mqtt.sensor_refusals(session, sensor_id="sa1")
    assert [refusal.detail for refusal in kept] == ["refusal 4", "refusal 3", "refusal 2"]
    # Another community holding a sensor of the same id sees none of community a's.
    assert mqtt.sensor_refusals(session, sensor_id="sa1", community_id=registry["b"]) == []
    other = mqtt.community_sensor_refusals(session, community_id=registry["b"],
                                           sensor_id="sb1")
    assert [refusal.errors for refusal in other] == [
        [{"index": 0, "code": "invalid_value", "message": "x"}]]
