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
) -> tuple[Community, Member]:
    """The community in which this user id is an active member, and that member."""
    statement = (
        select(Community, Member)
        .join(Member, col(Member.community_id) == col(Community.id))
        .where(Member.user_id == user_id, Member.status == ACTIVE)
        .order_by(col(Community.key))
    )
    rows = [(row[0], row[1])
            for row in session.exec(_visible(statement, visible_ids, Community.id))]
    if not rows:
        raise NotFound(f"no active member with user id {user_id!r}", code="member_not_found")
    if len(rows) > 1:
        raise Conflict(f"user id {user_id!r} is an active member of several communities "
                       f"({', '.join(c.key for c, _ in rows)})", code="ambiguous_member")
    return rows[0]


def member_by_user_id(
    session: Session, *, user_id: str, visible_ids: set[int] | None
) -> tuple[Member, Community]:
    """The member linked to this user id and its community, preferring an active one.

    Without an active membership, the most recently updated one answers.
    """
    statement = (
        select(Member, Community)
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
                       f"({', '.join(sorted(c.key for _, c in active))})",
                       code="ambiguous_member")
    return (active or rows)[0]


def members_by_dids(
    session: Session, *, dids: list[str], visible_ids: set[int] | None
) -> list[tuple[Member, Community]]:
    """Every member holding one of these DIDs, with its community; unknown DIDs add nothing."""
    wanted = list(dict.fromkeys(dids))
    rows: list[tuple[Member, Community]] = []
    for start in range(0, len(wanted), IN_CHUNK):
        statement = (
            select(Member, Community)
            .join(Community, col(Community.id) == col(Member.community_id))
            .where(col(Member.did).in_(wanted[start:start + IN_CHUNK]))
            .order_by(col(Member.id))
        )
        rows.extend((row[0], row[1]) for row in
                    session.exec(_visible(statement, visible_ids, Member.community_id)))
    return rows


def _sensor_rows(
    session: Session, sensor_ids: list[str], visible_ids: set[int] | None
) -> list[tuple[Asset, Member, Community]]:
    """(asset, member, community) for every asset carrying these ids."""
    rows: list[tuple[Asset, Member, Community]] = []
    for start in range(0, len(sensor_ids), IN_CHUNK):
        chunk = sensor_ids[start:start + IN_CHUNK]
        statement = (
            select(Asset, Member, Community)
            .join(Member, col(Member.id) == col(Asset.member_id))
            .join(Community, col(Community.id) == col(Asset.community_id))
            .where(col(Asset.sensor_id).in_(chunk))
            .order_by(col(Asset.id))
        )
        rows.extend((row[0], row[1], row[2]) for row in
                    session.exec(_visible(statement, visible_ids, Asset.community_id)))
    return rows


def asset_by_sensor_id(
    session: Session, *, sensor_id: str, visible_ids: set[int] | None
) -> tuple[Asset, Member, Community]:
    """The asset carrying this sensor id, its member and its community."""
    rows = _sensor_rows(session, [sensor_id], visible_ids)
    if not rows:
        raise NotFound(f"no asset with sensor id {sensor_id!r}", code="sensor_not_found")
    return _single(rows, lambda row: row[1].status, lambda row: row[2].key,
                   what=f"sensor {sensor_id!r}", code="ambiguous_sensor")


def community_by_sensor_id(
    session: Session, *, sensor_id: str, visible_ids: set[int] | None
) -> tuple[Asset, Member, Community]:
    """The community holding the asset that carries this sensor id, with the asset and member."""
    return asset_by_sensor_id(session, sensor_id=sensor_id, visible_ids=visible_ids)


def assets_by_sensor_ids(
    session: Session, *, sensor_ids: list[str], visible_ids: set[int] | None
) -> list[tuple[Asset, Member, Community]]:
    """One (asset, member, community) per known sensor id, in the order first asked.

    Duplicates are answered once and unknown ids are left out. A sensor id found in several
    communities answers with an active member's asset, the most recent one on a tie.
    """
    wanted = list(dict.fromkeys(sensor_ids))
    by_sensor: dict[str, list[tuple[Asset, Member, Community]]] = {}
    for row in _sensor_rows(session, wanted, visible_ids):
        by_sensor.setdefault(row[0].sensor_id or "", []).append(row)
    answer: list[tuple[Asset, Member, Community]] = []
    for sensor_id in wanted:
        rows = by_sensor.get(sensor_id)
        if rows:
            answer.append(_preferred(rows, lambda row: row[1].status)[-1])
    return answer


def assets_by_user_ids(
    session: Session, *, user_ids: list[str], visible_ids: set[int] | None
) -> list[tuple[Asset, Member, Community]]:
    """Every asset of the members linked to these user ids, with member and community."""
    wanted = list(dict.fromkeys(user_ids))
    rows: list[tuple[Asset, Member, Community]] = []
    for start in range(0, len(wanted), IN_CHUNK):
        statement = (
            select(Asset, Member, Community)
            .join(Member, col(Member.id) == col(Asset.member_id))
            .join(Community, col(Community.id) == col(Asset.community_id))
            .where(col(Member.user_id).in_(wanted[start:start + IN_CHUNK]))
            .order_by(col(Asset.id))
        )
        rows.extend((row[0], row[1], row[2]) for row in
                    session.exec(_visible(statement, visible_ids, Asset.community_id)))
    return rows


def community_by_delivery_point(
    session: Session, *, dp_id: str, visible_ids: set[int] | None
) -> tuple[Community, Member, DeliveryPoint]:
    """The community in which this delivery point is held, preferring an active member's."""
    statement = (
        select(Community, Member, DeliveryPoint)
        .join(DeliveryPoint, col(DeliveryPoint.community_id) == col(Community.id))
        .join(Member, col(Member.id) == col(DeliveryPoint.member_id))
        .where(DeliveryPoint.dp_id == dp_id)
        .order_by(col(Community.key))
    )
    rows = [(row[0], row[1], row[2])
            for row in session.exec(_visible(statement, visible_ids, Community.id))]
    if not rows:
        raise NotFound(f"no delivery point {dp_id!r}", code="delivery_point_not_found")
    return _single(rows, lambda row: row[1].status, lambda row: row[0].key,
                   what=f"delivery point {dp_id!r}", code="ambiguous_delivery_point")
