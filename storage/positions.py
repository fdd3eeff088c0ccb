"""Bundle order of new rows: a community's highest position plus one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session


def next_position(session: Session, model: Any, *, community_id: int) -> int:
    """The position of a new row of `model` (Member, Area, DeliveryPoint, Asset) in the
    community: one past the highest, 0 for the first."""
    highest = session.execute(
        select(func.max(model.position)).where(model.community_id == community_id)
    ).scalar_one()
    return (highest if highest is not None else -1) + 1
