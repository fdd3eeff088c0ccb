"""The energy balance against a hand-computed example, DST-day buckets, compaction, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from storage.telemetry import balance, queries
from storage.telemetry.compaction import compact
from storage.telemetry.ingest import ingest_file, ingest_table, parse_instants
from storage.telemetry.store import TelemetryStore

ROME = ZoneInfo("Europe/Rome")


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _put(store: TelemetryStore, rows: list[tuple[str, str, str, float]]) -> None:
    table = pa.table({
        "idx": pa.array(range(len(rows)), pa.int64()),
        "sensor_id": [row[0] for row in rows], "channel": [row[1] for row in rows],
        "ts": parse_instants([row[2] for row in rows]),
        "value": pa.array([row[3] for row in rows], pa.float64())})
    ingest_table(store, table, authorize=lambda ids: dict.fromkeys(ids, 1), max_future_ms=10**13)


@pytest.fixture
def store(tmp_path: Path) -> TelemetryStore:
    opened = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    yield opened  # type: ignore[misc]
    opened.close()


def test_shared_energy_matches_the_hand_computed_example(store: TelemetryStore) -> None:
    # One area, two hours (Rome, 2026-03-02 10:00 and 11:00 local = 09:00 and 10:00 UTC).
    # Hour 1: A withdraws 3 kWh, B withdraws 1 kWh, P feeds in 2 kWh -> shared 2 kWh;
    #   A's consumer part 2 * 3/4 = 1.5, B's 0.5; P's producer part 2.
    # Hour 2: A withdraws 1 kWh, P feeds in 5 kWh -> shared 1 kWh; A 1.0; P 1.0.
    # Totals: withdrawn 5, fed in 7, shared 3; rates 3/7 and 3/5; incentive 3 kWh x 110 EUR/MWh.
    _put(store, [
        ("a", "energy_import", "2026-03-02T09:30:00Z", 1000.0),
        ("a", "energy_import", "2026-03-02T09:59:00Z", 2000.0),
        ("b", "energy_import", "2026-03-02T09:15:00Z", 1000.0),
        ("p", "energy_export", "2026-03-02T09:45:00Z", 2000.0),
        ("a", "energy_import", "2026-03-02T10:10:00Z", 1000.0),
        ("p", "energy_export", "2026-03-02T10:20:00Z", 5000.0),
        ("p", "energy_produced", "2026-03-02T10:20:00Z", 6000.0),
    ])
    meters = [balance.Meter("a", "alice", "north"), balance.Meter("b", "bob", "north"),
              balance.Meter("p", "plant", "north")]
    areas = {"alice": "north", "bob": "north", "plant": "north"}
    for compacted in (False, True):
        if compacted:
            compact(store, quiet_ms=0)
        result = balance.energy_balance(store, community_id=1, meters=meters, member_areas=areas,
                                        first=date(2026, 3, 2), last=date(2026, 3, 2),
                                        zone=ROME, granularity="hour", rate=110.0)
        totals = result["totals"]
        assert totals["withdrawn_wh"] == 5000 and totals["fed_in_wh"] == 7000
        assert totals["shared_wh"] == 3000 and totals["produced_wh"] == 6000
        assert totals["self_consumption_rate"] == pytest.approx(3 / 7)
        assert totals["self_sufficiency_rate"] == pytest.approx(3 / 5)
        assert totals["incentive_eur"] == pytest.approx(0.33)
        hours = {period["start"]: period["shared_wh"] for period in result["periods"]}
        assert hours == {_ms("2026-03-02T09:00:00Z"): 2000, _ms("2026-03-02T10:00:00Z"): 1000}
        parts = {share["member_key"]: share for share in result["members"]}
        assert parts["alice"]["shared_as_consumer_wh"] == pytest.approx(2500)
        assert parts["bob"]["shared_as_consumer_wh"] == pytest.approx(500)
        assert parts["plant"]["shared_as_producer_wh"] == pytest.approx(3000)
        assert sum(share["incentive_eur"] for share in parts.values()) == pytest.approx(0.33)


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25)])
def test_daylight_saving_days_have_23_and_25_hours(store: TelemetryStore, day: date,
                                                   hours: int) -> None:
    start = _ms(f"{day.isoformat()}T00:00:00+01:00" if day.month == 3
                else f"{day.isoformat()}T00:00:00+02:00")
    rows = [("s", "energy_import", datetime.fromtimestamp((start + i * 900_000) / 1000, UTC)
             .isoformat(), 1.0) for i in range(4 * 30)]
    _put(store, rows)
    result = queries.aggregates(store, sensors=dict.fromkeys(["s"], 1), channel="energy_import",
                                low=start - 3_600_000, high=start + 30 * 3_600_000,
                                bucket="day", zone=ROME)
    buckets = result.of("s").rows()
    the_day = next(bucket for bucket in buckets if bucket.start == start)
    assert (the_day.end - the_day.start) == hours * 3_600_000
    assert the_day.count == hours * 4 and the_day.total == hours * 4
    summaries = queries.daily_summaries(store, community_id=1, sensor_id="s", first=day,
                                        last=day, zone=ROME)
    assert summaries[0]["readings"] == hours * 4


def test_compaction_keeps_every_answer(store: TelemetryStore) -> None:
    rows = [(f"s{i % 3}", "power", f"2026-01-0{1 + i % 2}T{(i // 6) % 24:02d}:{i % 60:02d}:00Z",
             float(i)) for i in range(600)]
    _put(store, rows)
    args = {"sensors": dict.fromkeys(["s0", "s1", "s2"], 1), "channel": "power",
            "low": _ms("2026-01-01T00:00Z"), "high": _ms("2026-01-03T00:00Z")}
    before = queries.aggregates(store, **args, bucket="hour", zone=ROME)
    series_before = queries.series(store, **args, max_points=40)
    assert compact(store, quiet_ms=0) == 2 and not store.unsealed
    assert queries.aggregates(store, **args, bucket="hour", zone=ROME) == before
    assert queries.series(store, **args, max_points=40) == series_before


@pytest.mark.parametrize("sent_as", ["json", "csv"])
def test_readings_before_1970_fall_in_their_own_hour_and_day(
        store: TelemetryStore, tmp_path: Path, sent_as: str) -> None:
    """DuckDB's integer division truncates toward zero; an hour or a day before the epoch
    still starts at its floor (1969-12-31T23:00Z for -1 ms, not 1970-01-01T00:00Z)."""
    rows = [("s", "energy_import", stamp, value) for stamp, value in (
        ("1969-12-31T22:30:00Z", 1.0), ("1969-12-31T23:59:59.999Z", 2.0),
        ("1970-01-01T00:00:00Z", 4.0), ("1970-01-01T00:30:00Z", 8.0))]
    if sent_as == "json":
        _put(store, rows)
    else:
        upload = store.temp_dir / "upload-readings.csv"  # where uploads are spooled
        upload.write_text("sensor_id,channel,ts,value\n"
                          + "".join(f"{','.join(map(str, row))}\n" for row in rows))
        ingest_file(store, upload, "text/csv", authorize=lambda ids: dict.fromkeys(ids, 1),
                    max_future_ms=10**13)
    assert sorted(store.unsealed) == [-1, 0]
    args = {"sensors": {"s": 1}, "channel": "energy_import", "low": _ms("1969-12-31T22:00Z"),
            "high": _ms("1970-01-01T01:00Z"), "zone": ZoneInfo("UTC")}
    # An energy reading at 00:00 counts for 23:00-24:00 (storage.telemetry.instants).
    expected_hours = [(_ms("1969-12-31T22:00Z"), 1, 1.0), (_ms("1969-12-31T23:00Z"), 2, 6.0),
                      (_ms("1970-01-01T00:00Z"), 1, 8.0)]
    for _ in ("unsealed", "compacted"):
        hours = queries.aggregates(store, **args, bucket="hour").of("s").rows()
        assert [(bucket.start, bucket.count, bucket.total) for bucket in hours] == \
            expected_hours
        days = queries.aggregates(store, **args, bucket="day").of("s").rows()
        assert [(bucket.start, bucket.total) for bucket in days] == [
            (_ms("1969-12-31T00:00Z"), 7.0), (_ms("1970-01-01T00:00Z"), 8.0)]
        assert compact(store, quiet_ms=0) in (0, 2) and not store.unsealed


CRASHER = textwrap.dedent("""
    import sys, pyarrow as pa
    from pathlib import Path
    from storage.telemetry.ingest import ingest_file, ingest_table, parse_instants
    from storage.telemetry.store import TelemetryStore
    store = TelemetryStore(Path(sys.argv[1]), memory_limit_mb=256)
    batch = 0
    while True:
        stamps = [f"2026-01-01T00:00:00Z"] * 0 + [
            f"2026-01-{1 + batch // 1440:02d}T{(batch // 60) % 24:02d}:{batch % 60:02d}:"
            f"{second:02d}Z" for second in range(50)]
        table = pa.table({"idx": pa.array(range(50), pa.int64()), "sensor_id": ["s"] * 50,
                          "channel": ["power"] * 50, "ts": parse_instants(stamps),
                          "value": pa.array([float(batch)] * 50)})
        ingest_table(store, table, authorize=lambda ids: dict.fromkeys(ids, 1),
                     max_future_ms=10**13)
        print(batch, flush=True)
        batch += 1
""")


def test_kill_during_ingest_loses_no_acknowledged_reading(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.duckdb"
    process = subprocess.Popen([sys.executable, "-c", CRASHER, str(path)],
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[3],
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])})
    assert process.stdout is not None
    acknowledged = -1
    deadline = time.monotonic() + 60
    while acknowledged < 40 and time.monotonic() < deadline:
        acknowledged = int(process.stdout.readline())
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert acknowledged >= 40
    reopened = TelemetryStore(path, memory_limit_mb=256)
    try:
        with reopened.reader() as cursor:
            stored = cursor.execute("SELECT count(*) FROM readings").fetchall()[0][0]
        assert stored >= (acknowledged + 1) * 50
    finally:
        reopened.close()
