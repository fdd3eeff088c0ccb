"""Member storage: keyset pagination, query counts, and conflicts a concurrent writer causes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage import members
from storage.errors import Conflict, InvalidCursor
from storage.models import Area, Asset, Community, DeliveryPoint, Member
from storage.pagination import DEFAULT_LIMIT, MAX_LIMIT


def make_community(session: Session, key: str = "a", *, size: int = 0) -> Community:
    """A community with area north and `size` members m0000, m0001, ... (committed)."""
    community = Community(key=key, name=f"Community {key}")
    session.add(community)
    session.flush()
    assert community.id is not None
    session.add(Area(community_id=community.id, key="north", name="North",
                     boundary_source="gse_cabine_primarie", boundary_id=f"AC-{key}",
                     topology=[f"AC-{key}"]))
    add_members(session, community, range(size))
    session.commit()
    return community


def add_members(session: Session, community: Community, numbers: range,
                role: str = "consumer") -> None:
    assert community.id is not None
    session.add_all([
        Member(community_id=community.id, key=f"m{number:04d}",
               user_id=f"m{number:04d}@{community.key}.test", name=f"Member {number}",
               role=role, area="north", status="active", position=number)
        for number in numbers
    ])
    session.flush()


def walk(session: Session, community_id: int, *, limit: int | None,
         role: str | None = None) -> list[list[str]]:
    """The keys of every page, first to last."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = members.list_members(session, community_id=community_id, role=role, status=None,
                                    area=None, limit=limit, cursor=cursor)
        pages.append([row.key for row in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run meanwhile, transaction control left out."""
    statements: list[str] = []

    def record(*args: object) -> None:
        statement = str(args[2])
        if not statement.upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_default_page_size_is_50(session: Session) -> None:
    community = make_community(session, size=120)
    assert community.id is not None
    page = members.list_members(session, community_id=community.id, role=None, status=None,
                                area=None, limit=None, cursor=None)
    assert len(page.items) == DEFAULT_LIMIT == 50
    assert page.next_cursor is not None


@pytest.mark.parametrize(("limit", "size"), [(0, 1), (-5, 1), (1, 1), (1000, MAX_LIMIT),
                                             (MAX_LIMIT, MAX_LIMIT)])
def test_page_size_is_clamped(session: Session, limit: int, size: int) -> None:
    community = make_community(session, size=MAX_LIMIT + 20)
    assert community.id is not None
    page = members.list_members(session, community_id=community.id, role=None, status=None,
                                area=None, limit=limit, cursor=None)
    assert len(page.items) == size
    assert page.next_cursor is not None


def test_pages_cover_every_member_once_and_the_last_has_no_cursor(session: Session) -> None:
    community = make_community(session, size=600)
    assert community.id is not None
    pages = walk(session, community.id, limit=200)
    assert [len(page) for page in pages] == [200, 200, 200]
    assert [key for page in pages for key in page] == [f"m{n:04d}" for n in range(600)]


def test_a_short_last_page(session: Session) -> None:
    community = make_community(session, size=7)
    assert community.id is not None
    assert [len(page) for page in walk(session, community.id, limit=3)] == [3, 3, 1]


def test_pages_are_stable_under_inserts_between_pages(session: Session) -> None:
    community = make_community(session, size=30)
    assert community.id is not None
    first = members.list_members(session, community_id=community.id, role=None, status=None,
                                 area=None, limit=10, cursor=None)
    add_members(session, community, range(100, 105))
    session.commit()
    rest = walk_from(session, community.id, first.next_cursor)
    seen = [row.key for row in first.items] + rest
    assert seen == [f"m{n:04d}" for n in range(30)] + [f"m{n:04d}" for n in range(100, 105)]


def walk_from(session: Session, community_id: int, cursor: str | None) -> list[str]:
    keys: list[str] = []
    while cursor is not None:
        page = members.list_members(session, community_id=community_id, role=None,
                                    status=None, area=None, limit=10, cursor=cursor)
        keys += [row.key for row in page.items]
        cursor = page.next_cursor
    return keys


def test_filters_and_other_communities(session: Session) -> None:
    community = make_community(session, size=5)
    other = make_community(session, "b", size=5)
    assert community.id is not None and other.id is not None
    add_members(session, community, range(10, 13), role="producer")
    session.commit()
    assert walk(session, community.id, limit=2, role="producer") == [["m0010", "m0011"],
                                                                     ["m0012"]]
    assert sum(len(page) for page in walk(session, community.id, limit=None)) == 8


def test_a_cursor_never_leaves_its_listing(session: Session) -> None:
    community = make_community(session, size=5)
    other = make_community(session, "b", size=5)
    assert community.id is not None and other.id is not None
    page = members.list_members(session, community_id=community.id, role=None, status=None,
                                area=None, limit=2, cursor=None)
    elsewhere = members.list_members(session, community_id=other.id, role=None, status=None,
                                     area=None, limit=10, cursor=page.next_cursor)
    assert {row.community_id for row in elsewhere.items} == {other.id}
    with pytest.raises(InvalidCursor):
        members.list_members(session, community_id=community.id, role=None, status=None,
                             area=None, limit=2, cursor="not-a-cursor")


def test_a_page_is_one_query(session: Session, engine: Engine) -> None:
    community = make_community(session, size=MAX_LIMIT + 1)
    assert community.id is not None
    with count_queries(engine) as statements:
        page = members.list_members(session, community_id=community.id, role=None,
                                    status=None, area=None, limit=MAX_LIMIT, cursor=None)
        assert len(page.items) == MAX_LIMIT
        assert all(row.extra == {} for row in page.items)
    assert len(statements) == 1


def test_member_detail_is_two_queries_after_the_member(session: Session, engine: Engine) -> None:
    community = make_community(session, size=1)
    assert community.id is not None
    member = members.get_member(session, community_id=community.id, key="m0000")
    assert member.id is not None
    session.add_all([DeliveryPoint(community_id=community.id, member_id=member.id, dp_id=f"P{n}",
                                   type="pod", position=2 - n) for n in range(3)])
    session.add_all([Asset(community_id=community.id, member_id=member.id, key=f"a{n}",
                           asset_type="meter" if n % 2 else "pv", name=f"A{n}")
                     for n in range(5)])
    session.commit()
    with count_queries(engine) as statements:
        parts = members.member_parts(session, member=member)
    assert len(statements) == 2
    assert [point.dp_id for point in parts.delivery_points] == ["P2", "P1", "P0"]
    assert parts.asset_counts == {"meter": 2, "pv": 3}


@pytest.mark.parametrize(("column", "code"), [("key", "member_key_taken"),
                                              ("user_id", "user_id_taken"),
                                              ("did", "did_taken")])
def test_a_constraint_a_concurrent_writer_won_on_create_is_a_conflict(
    session: Session, column: str, code: str
) -> None:
    """The checks before the insert passed, but another transaction committed first."""
    community = make_community(session, size=1)
    other = make_community(session, "b")
    assert community.id is not None and other.id is not None
    taken = members.get_member(session, community_id=community.id, key="m0000")
    taken.did = "did:web:x"
    session.commit()
    values = {"key": "new", "user_id": "new@a.test", "did": None}
    values[column] = {"key": "m0000", "user_id": "m0000@a.test", "did": "did:web:x"}[column]
    community_id = other.id if column == "did" else community.id
    member = Member(community_id=community_id, key=values["key"], user_id=values["user_id"],
                    name="New", role="consumer", area="north", status="pending",
                    did=values["did"])
    with pytest.raises(Conflict) as raised, members._unique_guard(
            session, community_id=community_id, member_id=None, key=values["key"],
            user_id=values["user_id"], did=values["did"]):
        session.add(member)
    assert raised.value.code == code


@pytest.mark.parametrize(("column", "code"), [("user_id", "user_id_taken"),
                                              ("did", "did_taken")])
def test_a_constraint_a_concurrent_writer_won_on_update_is_a_conflict(
    session: Session, column: str, code: str
) -> None:
    community = make_community(session, size=2)
    assert community.id is not None
    taken = members.get_member(session, community_id=community.id, key="m0000")
    taken.did = "did:web:x"
    session.commit()
    member = members.get_member(session, community_id=community.id, key="m0001")
    value = {"user_id": "m0000@a.test", "did": "did:web:x"}[column]
    changes = {"user_id": None, "did": None, column: value}
    with pytest.raises(Conflict) as raised, members._unique_guard(
            session, community_id=community.id, member_id=member.id, key=None, **changes):
        setattr(member, column, value)
        session.add(member)
    assert raised.value.code == code
    session.rollback()
    assert members.get_member(session, community_id=community.id, key="m0001").did is None
