"""Sensors and delivery points claimed across communities: who holds them, and the write lock.

A sensor may be carried by assets of one community only, whatever their members' status
(pending, active, suspended, inactive): readings are kept per community and a sensor id
claimed elsewhere, even by a member not yet or no longer active, would let that community
write into or read the series of the meter under the same id. A delivery point may be held by
active members of one community only. Every write that could make either held twice (an asset
or delivery point written, a member made active, a bundle imported) first takes
`lock_claims`, then asks `held_sensors` / `held_delivery_points`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

from sqlalchemy import Table, select, text
from sqlmodel import Session

from storage.models import Asset, DeliveryPoint, Member

# Enough below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement.
CHUNK = 500
# The PostgreSQL advisory lock key of cross-community claims ("CWclaims" as a 64-bit integer).
CLAIMS_LOCK_KEY = 0x4357636C61696D73
ACTIVE = "active"

_MEMBER: Table = Member.__table__  # type: ignore[attr-defined]
_DP: Table = DeliveryPoint.__table__  # type: ignore[attr-defined]
_ASSET: Table = Asset.__table__  # type: ignore[attr-defined]


def lock_claims(session: Session) -> None:
    """Serialise the writes that claim sensors or delivery points until the transaction ends.

    PostgreSQL takes a transaction-scoped advisory lock; SQLite's BEGIN IMMEDIATE serialises
    every writer already. Take it before any community row lock, so that locks are always
    taken in one order.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIMS_LOCK_KEY})


def held_sensors(
    session: Session, *, sensor_ids: Collection[str], excluding_community_ids: Collection[int],
) -> set[str]:
    """Those of `sensor_ids` an asset of any member (whatever its status) carries, outside
    the excluded communities."""
    return _held(session, _ASSET.c.sensor_id, _ASSET, sensor_ids, excluding_community_ids,
                 active_only=False)


def held_delivery_points(
    session: Session, *, dp_ids: Collection[str], excluding_community_ids: Collection[int],
) -> set[str]:
    """Those of `dp_ids` an active member holds, outside the excluded communities."""
    return _held(session, _DP.c.dp_id, _DP, dp_ids, excluding_community_ids)


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start:start + CHUNK]


def _held(session: Session, column: Any, table: Table, values: Collection[str],
          excluding_community_ids: Collection[int], *, active_only: bool = True) -> set[str]:
    # Two single-table lookups rather than one join: right after a bulk import PostgreSQL has
    # no statistics yet and planned the join at 400 ms a chunk; these take a few ms.
    excluded = set(excluding_community_ids)
    holders: dict[int, set[str]] = {}
    for chunk in _chunks(values):
        rows = session.execute(
            select(column, table.c.community_id, table.c.member_id).where(column.in_(chunk)))
        for value, community_id, member_id in rows:
            if community_id not in excluded:
                holders.setdefault(member_id, set()).add(value)
    if not active_only:
        return {value for found in holders.values() for value in found}
    held: set[str] = set()
    for chunk_ids in _chunks(holders):
        active = session.execute(select(_MEMBER.c.id).where(
            _MEMBER.c.id.in_(chunk_ids), _MEMBER.c.status == ACTIVE))
        for (member_id,) in active:
            held.update(holders[member_id])
    return held
