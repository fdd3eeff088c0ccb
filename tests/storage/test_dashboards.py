"""Dashboards in storage: who reads and who changes one, widgets checked and placed on the grid,
and a refused write that leaves what is stored as it was."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from storage import dashboards
from storage.dashboards import Viewer, WidgetSpec
from storage.errors import Conflict, Forbidden, Invalid, NotFound
from storage.models import Member, User

LINE = WidgetSpec(kind="line", x=0, y=0, w=6, h=3, window="P1D", sensors=["sa1", "sa2"],
                  channel="power")
GAUGE = WidgetSpec(kind="gauge", x=6, y=0, w=3, h=3, window="PT1H", sensors=["sa1"],
                   channel="soc", minimum=0, maximum=100)


def viewer(session: Session, email: str, **powers: bool) -> Viewer:
    """An account (created on first use) as dashboards see it."""
    user = User(email=email, password_hash="-", role="user")
    session.add(user)
    session.flush()
    assert user.id is not None
    return Viewer(user_id=user.id, email=email, **powers)


@pytest.fixture
def people(session: Session, registry: dict[str, int]) -> dict[str, Viewer]:
    """a's operator, an active member and a suspended one of a, b's operator, an admin."""
    for key, status in (("pro", "active"), ("sus", "suspended")):
        session.add(Member(community_id=registry["a"], key=key, user_id=f"{key}@a.test",
                           name=key, role="prosumer", area="north", status=status))
    found = {name: viewer(session, email) for name, email in (
        ("op_a", "op@a.test"), ("pro", "pro@a.test"), ("sus", "sus@a.test"),
        ("op_b", "op@b.test"))}
    found["admin"] = viewer(session, "root@x.test", reads_all=True, writes_all=True)
    session.commit()
    return found


def test_a_shared_dashboard_is_read_by_members_and_changed_by_operators(
        session: Session, people: dict[str, Viewer]) -> None:
    view = dashboards.create_dashboard(session, viewer=people["pro"], name="Ours",
                                       description=None, community_key="a",
                                       widgets=[LINE, GAUGE])
    dashboard_id = view.dashboard.id
    assert dashboard_id is not None and view.community == "a" and view.owner == "pro@a.test"
    assert [widget.kind for widget in view.widgets] == ["line", "gauge"]
    seen = dashboards.get_dashboard(session, viewer=people["op_a"], dashboard_id=dashboard_id)
    assert seen.editable
    for outsider in ("sus", "op_b"):
        with pytest.raises(NotFound) as refused:
            dashboards.get_dashboard(session, viewer=people[outsider], dashboard_id=dashboard_id)
        assert refused.value.code == "dashboard_not_found"
    mine = dashboards.create_dashboard(session, viewer=people["op_a"], name="Ops",
                                       description=None, community_key="a", widgets=[])
    assert mine.dashboard.id is not None
    with pytest.raises(Forbidden):
        dashboards.delete_dashboard(session, viewer=people["pro"],
                                    dashboard_id=mine.dashboard.id)
    dashboards.update_dashboard(session, viewer=people["op_a"], dashboard_id=dashboard_id,
                                changes={"name": "Renamed", "community": None})
    assert dashboards.get_dashboard(session, viewer=people["pro"],
                                    dashboard_id=dashboard_id).dashboard.name == "Renamed"
    with pytest.raises(NotFound):
        dashboards.get_dashboard(session, viewer=people["op_a"], dashboard_id=dashboard_id)
    listed = dashboards.list_dashboards(session, viewer=people["admin"], limit=None,
                                        cursor=None)
    assert [item.dashboard.name for item in listed.items] == ["Ops"]


@pytest.mark.parametrize(("spec", "error", "code"), [
    (WidgetSpec(kind="line", x=8, y=0, w=6, h=3, window="P1D", sensors=["sa1"],
                channel="power"), Invalid, "invalid_widget_place"),
    (WidgetSpec(kind="latest", x=0, y=5, w=2, h=2, window="P1D", sensors=["sa1", "sa2"],
                channel="power"), Invalid, "invalid_widget"),
    (WidgetSpec(kind="gauge", x=0, y=5, w=2, h=2, window="P1D", sensors=["sa1"],
                channel="soc"), Invalid, "invalid_widget"),
    (WidgetSpec(kind="balance", x=0, y=5, w=2, h=2, window="P1D"), Invalid, "invalid_widget"),
    (WidgetSpec(kind="balance", x=5, y=2, w=2, h=2, window="P1D", community="a"), Conflict,
     "widget_overlap"),
])
def test_refused_widgets(session: Session, people: dict[str, Viewer], spec: WidgetSpec,
                         error: type[Exception], code: str) -> None:
    view = dashboards.create_dashboard(session, viewer=people["pro"], name="Mine",
                                       description=None, community_key=None, widgets=[LINE])
    session.commit()
    assert view.dashboard.id is not None
    with pytest.raises(error) as refused:
        dashboards.add_widget(session, viewer=people["pro"], dashboard_id=view.dashboard.id,
                              spec=spec)
    assert getattr(refused.value, "code", None) == code
    session.rollback()
    stored = dashboards.get_dashboard(session, viewer=people["pro"],
                                      dashboard_id=view.dashboard.id)
    assert [(widget.kind, widget.x, widget.w) for widget in stored.widgets] == [("line", 0, 6)]


def test_sharing_needs_a_membership_of_the_community(session: Session,
                                                     people: dict[str, Viewer]) -> None:
    with pytest.raises(NotFound) as refused:
        dashboards.create_dashboard(session, viewer=people["pro"], name="x", description=None,
                                    community_key="b", widgets=[])
    assert refused.value.code == "community_not_found"
    shared = dashboards.create_dashboard(session, viewer=people["admin"], name="x",
                                         description=None, community_key="b", widgets=[])
    assert shared.community == "b"
