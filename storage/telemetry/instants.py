"""The instants the store accepts, and the instant a reading counts at in buckets.

Accepted instants: 1900-01-01T00:00:00Z (included) to 2200-01-01T00:00:00Z (excluded). Wide
enough for any real meter (and for back-filled history), narrow enough for every format an
instant is written in: a four-digit year in ISO 8601 and JSON, Python `datetime` in any
timezone (years 1-9999), DuckDB and Parquet timestamps, NumPy `datetime64[ms]`, and XLSX
(whose 1900 date system starts there). Every input path refuses other instants.

Counting: an energy reading (`kind == "interval"`, Wh during the interval ending at ts)
belongs to the bucket holding ts - 1 ms, so that `10:00` counts for 09:00-10:00; an
instantaneous reading belongs to the bucket holding ts.
"""

from __future__ import annotations

import numpy as np

from storage.telemetry.channels import CATALOG

MIN_TS_MS = -2_208_988_800_000  # 1900-01-01T00:00:00Z, included
END_TS_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z, excluded
MIN_TS_TEXT = "1900-01-01T00:00:00Z"
END_TS_TEXT = "2200-01-01T00:00:00Z"
INTERVAL_CODES = tuple(channel.code for channel in CATALOG if channel.kind == "interval")
DAY_MS = 86_400_000
INTERVAL_LIST = ", ".join(str(code) for code in INTERVAL_CODES)


def accepted(ts_ms: int) -> bool:
    """Whether an instant (UTC epoch ms) is in the accepted range."""
    return MIN_TS_MS <= ts_ms < END_TS_MS


def accepted_sql(column: str = "ts") -> str:
    """SQL holding for an instant column in the accepted range."""
    return f"({column} >= {MIN_TS_MS} AND {column} < {END_TS_MS})"


def counted_ts_sql(ts: str = "ts", channel: str = "channel") -> str:
    """SQL for the instant a reading counts at: ts - 1 for energy channels, ts otherwise."""
    return f"({ts} - ({channel} IN ({INTERVAL_LIST}))::BIGINT)"


def counted_range_sql(low: int, high: int, ts: str = "ts", channel: str = "channel") -> str:
    """SQL holding for readings that count within [low, high): ts in [low, high) for
    instantaneous channels, in (low, high] for energy channels (a bound on ts first, which
    the zone maps prune by)."""
    counted = counted_ts_sql(ts, channel)
    return (f"({ts} >= {int(low)} AND {ts} <= {int(high)}"
            f" AND {counted} >= {int(low)} AND {counted} < {int(high)})")


def counted_days(ts: np.ndarray, channel: np.ndarray) -> list[int]:
    """The UTC days whose rows or rollup readings change: the days of their ts and of their
    counted instants (an energy reading at midnight counts for the day before)."""
    counted = ts - np.isin(channel, INTERVAL_CODES)
    return np.union1d(ts // DAY_MS, counted // DAY_MS).tolist()
