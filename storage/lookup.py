"""Cross-community lookups by user id, sensor id and delivery point, within what a caller sees."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlmodel import Session, col, select

from storage.errors import Conflict, NotFound
from storage.models import Asset, Community, DeliveryPoint, Member

ACTIVE = "active"
IN_CHUNK = 500  # identifiers per IN (...) list; far below every backend's parameter limit
Row = TypeVar("Row", bound=Sequence[Any])


def _visible(statement: Any, visible_ids: set[int] | None, column: Any) -> Any:
    """Restrict a statement to the communities the caller may see (None: all of them)."""
    if visible_ids is None:
        return statement
    return statement.where(col(column).in_(sorted(visible_ids)))


def _preferred(rows: list[Row], status_of: Callable[[Row], str]) -> list[Row]:
    """The rows whose member is active, or every row when none is."""
    active = [row for row in rows if status_of(row) == ACTIVE]
    return active or rows


def _single(rows: list[Row], status_of: Callable[[Row], str], community_of: Callable[[Row], str],
            *, what: str, code: str) -> Row:
    """The one row to answer with, preferring active members; Conflict when several remain."""
    candidates = _preferred(rows, status_of)
    if len(candidates) > 1:
        keys = sorted({community_of(row) for row in candidates})
        raise Conflict(f"{what} is found in several communities ({', '.join(keys)})", code=code)
    return candidates[0]


def community_by_user_id(
    session: Session, *, user_id: str, visible_ids: set[int] | None
) -> Community:
    """The community in which this user id is an active member."""
    statement = (
        select(Community)
        .join(Member, col(Member.community_id) == col(Community.id))
        .where(Member.user_id == user_id, Member.status == ACTIVE)
        .order_by(col(Community.key))
    )
    communities = list(session.exec(_visible(statement, visible_ids, Community.id)).all())
    if not communities:
        raise NotFound(f"no active member with user id {user_id!r}", code="member_not_found")
    if len(communities) > 1:
        raise Conflict(f"user id {user_id!r} is an active member of several communities "
                       f"({', '.join(c.key for c in communities)})", code="ambiguous_member")
    return communities[0]


def member_by_user_id(
    session: Session, *, user_id: str, visible_ids: set[int] | None
) -> tuple[Member, str]:
    """The member linked to this user id and its community key, preferring an active one.

    Without an active membership, the most recently updated one answers.
    """
    statement = (
        select(Member, Community.key)
        .join(Community, col(Community.id) == col(Member.community_id))
        .where(Member.user_id == user_id)
        .order_by(col(Member.updated_at).desc(), col(Member.id).desc())
    )
    rows = [(row[0], row[1])
            for row in session.exec(_visible(statement, visible_ids, Member.community_id))]
    if not rows:
        raise NotFound(f"no member with user id {user_id!r}", code="member_not_found")
    active = [row for row in rows if row[0].status == ACTIVE]
    if len(active) > 1:
        raise Conflict(f"user id {user_id!r} is an active member of several communities "
                       f"({', '.join(sorted(key for _, key in active))})",
                       code="ambiguous_member")
    return (active or rows)[0]


def _sensor_rows(
    session: Session, sensor_ids: list[str], visible_ids: set[int] | None
) -> list[tuple[Asset, str, str, str]]:
    """(asset, member key, member status, community key) for every asset carrying these ids."""
    rows: list[tuple[Asset, str, str, str]] = []
    for start in range(0, len(sensor_ids), IN_CHUNK):
        chunk = sensor_ids[start:start + IN_CHUNK]
        statement = (
            select(Asset, Member.key, Member.status, Community.key)
            .join(Member, col(Member.id) == col(Asset.member_id))
            .join(Community, col(Community.id) == col(Asset.community_id))
            .where(col(Asset.sensor_id).in_(chunk))
            .order_by(col(Asset.id))
        )
        rows.extend((row[0], row[1], row[2], row[3]) for row in
                    session.exec(_visible(statement, visible_ids, Asset.community_id)))
    return rows


def asset_by_sensor_id(
    session: Session, *, sensor_id: str, visible_ids: set[int] | None
) -> tuple[Asset, str, str]:
    """The asset carrying this sensor id, its member's key and its community's key."""
    rows = _sensor_rows(session, [sensor_id], visible_ids)
    if not rows:
        raise NotFound(f"no asset with sensor id {sensor_id!r}", code="sensor_not_found")
    asset, member_key, _, community_key = _single(
        rows, lambda row: row[2], lambda row: row[3], what=f"sensor {sensor_id!r}",
        code="ambiguous_sensor")
    return asset, member_key, community_key


def community_by_sensor_id(
    session: Session, *, sensor_id: str, visible_ids: set[int] | None
) -> Community:
    """The community holding the asset that carries this sensor id."""
    asset, _, _ = asset_by_sensor_id(session, sensor_id=sensor_id, visible_ids=visible_ids)
    community = session.get(Community, asset.community_id)
    assert community is not None
    return community


def assets_by_sensor_ids(
    session: Session, *, sensor_ids: list[str], visible_ids: set[int] | None
) -> list[tuple[Asset, str, str]]:
    """One (asset, member key, community key) per known sensor id, in the order first asked.

    Duplicates are answered once and unknown ids are left out. A sensor id found in several
    communities answers with an active member's asset, the most recent one on a tie.
    """
    wanted = list(dict.fromkeys(sensor_ids))
    by_sensor: dict[str, list[tuple[Asset, str, str, str]]] = {}
    for row in _sensor_rows(session, wanted, visible_ids):
        by_sensor.setdefault(row[0].sensor_id or "", []).append(row)
    answer: list[tuple[Asset, str, str]] = []
    for sensor_id in wanted:
        rows = by_sensor.get(sensor_id)
        if rows:
            asset, member_key, _, community_key = _preferred(rows, lambda row: row[2])[-1]
            answer.append((asset, member_key, community_key))
    return answer


def community_by_delivery_point(
    session: Session, *, dp_id: str, visible_ids: set[int] | None
) -> Community:
    """The community in which this delivery point is held, preferring an active member's."""
    statement = (
        select(Community, Member.status)
        .join(DeliveryPoint, col(DeliveryPoint.community_id) == col(Community.id))
        .join(Member, col(Member.id) == col(DeliveryPoint.member_id))
        .where(DeliveryPoint.dp_id == dp_id)
        .order_by(col(Community.key))
    )
    rows = [(row[0], row[1])
            for row in session.exec(_visible(statement, visible_ids, Community.id))]
    if not rows:
        raise NotFound(f"no delivery point {dp_id!r}", code="delivery_point_not_found")
    community, _ = _single(rows, lambda row: row[1], lambda row: row[0].key,
                           what=f"delivery point {dp_id!r}", code="ambiguous_delivery_point")
    return community
