"""Saved dashboards and their widgets: who sees and who changes one, the grid they sit on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from storage import access
from storage.errors import Conflict, Forbidden, Invalid, NotFound
from storage.models import Community, Dashboard, DashboardWidget, User, utc_now
from storage.pagination import Page, paginate

GRID_COLUMNS = 12
MAX_LINE_SENSORS = 8
ACTIVE = "active"


@dataclass(frozen=True)
class Viewer:
    """Who asks: an account, and whether it reads or changes every community's dashboards."""

    user_id: int
    email: str
    reads_all: bool = False
    writes_all: bool = False


@dataclass(frozen=True)
class WidgetSpec:
    """What a widget shows and where: one kind's fields, checked by `check_widget`."""

    kind: str
    x: int
    y: int
    w: int
    h: int
    window: str
    title: str | None = None
    sensors: list[str] = field(default_factory=list)
    channel: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    community: str | None = None


@dataclass(frozen=True)
class DashboardView:
    """A dashboard as its viewer sees it: owner, shared community, widgets, may it change it."""

    dashboard: Dashboard
    owner: str
    community: str | None
    widgets: list[DashboardWidget]
    editable: bool


def _member_community_ids(session: Session, viewer: Viewer) -> set[int]:
    """Communities where the viewer holds an active membership (any role)."""
    return {member.community_id for member, _ in access.memberships(session, user_id=viewer.email)
            if member.status == ACTIVE}


def _readable(session: Session, viewer: Viewer, dashboard: Dashboard) -> bool:
    if dashboard.owner_id == viewer.user_id:
        return True
    if dashboard.community_id is None:
        return False
    return viewer.reads_all or dashboard.community_id in _member_community_ids(session, viewer)


def _editable(session: Session, viewer: Viewer, dashboard: Dashboard) -> bool:
    if dashboard.owner_id == viewer.user_id:
        return True
    if dashboard.community_id is None:
        return False
    return viewer.writes_all or dashboard.community_id in access.administered_community_ids(
        session, user_id=viewer.email)


def _shared_community_id(session: Session, viewer: Viewer, key: str | None) -> int | None:
    """The community a dashboard is shared with: one the viewer belongs to (any, for platform
    admins); community_not_found otherwise, as for a missing one."""
    if key is None:
        return None
    visible = None if viewer.writes_all else _member_community_ids(session, viewer)
    community = access.community_by_key(session, key=key, visible_ids=visible)
    return community.id


def _view(session: Session, viewer: Viewer, dashboard: Dashboard,
          widgets: list[DashboardWidget] | None = None) -> DashboardView:
    owner = session.get(User, dashboard.owner_id)
    community = (session.get(Community, dashboard.community_id)
                 if dashboard.community_id is not None else None)
    if widgets is None:
        widgets = list(session.exec(select(DashboardWidget).where(
            DashboardWidget.dashboard_id == dashboard.id).order_by(
            col(DashboardWidget.y), col(DashboardWidget.x), col(DashboardWidget.id))).all())
    return DashboardView(dashboard=dashboard, owner=owner.email if owner else "",
                         community=community.key if community else None, widgets=widgets,
                         editable=_editable(session, viewer, dashboard))


def check_widget(spec: WidgetSpec) -> None:
    """Invalid (`invalid_widget_place`, `invalid_widget`) for a widget that cannot be drawn."""
    if spec.x + spec.w > GRID_COLUMNS:
        raise Invalid(f"x + w is {spec.x + spec.w}; the grid has {GRID_COLUMNS} columns",
                      code="invalid_widget_place")
    if spec.kind == "balance":
        if spec.community is None or spec.sensors or spec.channel is not None:
            raise Invalid("a balance widget names a community, and no sensors or channel",
                          code="invalid_widget")
        return
    if spec.community is not None:
        raise Invalid(f"a {spec.kind} widget names sensors, not a community",
                      code="invalid_widget")
    if spec.channel is None:
        raise Invalid(f"a {spec.kind} widget needs a channel", code="invalid_widget")
    most = MAX_LINE_SENSORS if spec.kind == "line" else 1
    if not 1 <= len(spec.sensors) <= most or len(set(spec.sensors)) != len(spec.sensors):
        raise Invalid(f"a {spec.kind} widget shows 1 to {most} distinct sensors",
                      code="invalid_widget")
    if spec.kind == "gauge":
        if spec.minimum is None or spec.maximum is None or spec.minimum >= spec.maximum:
            raise Invalid("a gauge needs min below max", code="invalid_widget")
    elif spec.minimum is not None or spec.maximum is not None:
        raise Invalid("only a gauge has min and max", code="invalid_widget")


def _overlaps(a: WidgetSpec | DashboardWidget, b: DashboardWidget) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _place(session: Session, *, dashboard_id: int, spec: WidgetSpec,
           replacing: int | None = None,
           placed: Sequence[DashboardWidget] | None = None) -> None:
    """Check a widget and that its place is free (Conflict `widget_overlap` otherwise)."""
    check_widget(spec)
    others = placed if placed is not None else session.exec(select(DashboardWidget).where(
        DashboardWidget.dashboard_id == dashboard_id)).all()
    for other in others:
        if (replacing is None or other.id != replacing) and _overlaps(spec, other):
            raise Conflict(f"the place overlaps widget {other.id} at x={other.x}, y={other.y}",
                           code="widget_overlap")


def _store_widget(widget: DashboardWidget, spec: WidgetSpec) -> DashboardWidget:
    widget.kind, widget.title, widget.window = spec.kind, spec.title, spec.window
    widget.x, widget.y, widget.w, widget.h = spec.x, spec.y, spec.w, spec.h
    widget.sensors, widget.channel = list(spec.sensors), spec.channel
    widget.minimum, widget.maximum, widget.community_key = (spec.minimum, spec.maximum,
                                                            spec.community)
    return widget


def create_dashboard(session: Session, *, viewer: Viewer, name: str, description: str | None,
                     community_key: str | None, widgets: list[WidgetSpec]) -> DashboardView:
    """A new dashboard of the viewer's, shared with `community_key` when given."""
    community_id = _shared_community_id(session, viewer, community_key)
    dashboard = Dashboard(owner_id=viewer.user_id, community_id=community_id, name=name,
                          description=description)
    session.add(dashboard)
    session.flush()
    assert dashboard.id is not None
    placed: list[DashboardWidget] = []
    for spec in widgets:
        _place(session, dashboard_id=dashboard.id, spec=spec, placed=placed)
        placed.append(_store_widget(DashboardWidget(dashboard_id=dashboard.id, kind=spec.kind,
                                                    x=0, y=0, w=1, h=1, window=spec.window),
                                    spec))
    session.add_all(placed)
    session.flush()
    return _view(session, viewer, dashboard)


def list_dashboards(session: Session, *, viewer: Viewer, limit: int | None,
                    cursor: str | None) -> Page[DashboardView]:
    """The viewer's own dashboards and those shared with its communities, oldest first."""
    statement = select(Dashboard)
    if not viewer.reads_all:
        shared = _member_community_ids(session, viewer)
        statement = statement.where(or_(col(Dashboard.owner_id) == viewer.user_id,
                                        col(Dashboard.community_id).in_(shared)))
    else:
        statement = statement.where(or_(col(Dashboard.owner_id) == viewer.user_id,
                                        col(Dashboard.community_id).is_not(None)))
    page = paginate(session, statement, col(Dashboard.id), limit=limit, cursor=cursor,
                    key_of=lambda dashboard: dashboard.id)
    ids = [dashboard.id for dashboard in page.items]
    widgets: dict[int, list[DashboardWidget]] = {dashboard_id: [] for dashboard_id in ids
                                                 if dashboard_id is not None}
    for widget in session.exec(select(DashboardWidget).where(
            col(DashboardWidget.dashboard_id).in_(ids)).order_by(
            col(DashboardWidget.y), col(DashboardWidget.x), col(DashboardWidget.id))).all():
        widgets[widget.dashboard_id].append(widget)
    return Page(items=[_view(session, viewer, dashboard, widgets[dashboard.id or 0])
                       for dashboard in page.items], next_cursor=page.next_cursor)


def _readable_dashboard(session: Session, viewer: Viewer, dashboard_id: int) -> Dashboard:
    dashboard = session.get(Dashboard, dashboard_id)
    if dashboard is None or not _readable(session, viewer, dashboard):
        raise NotFound(f"no dashboard {dashboard_id}", code="dashboard_not_found")
    return dashboard


def _editable_dashboard(session: Session, viewer: Viewer, dashboard_id: int) -> Dashboard:
    dashboard = _readable_dashboard(session, viewer, dashboard_id)
    if not _editable(session, viewer, dashboard):
        raise Forbidden("only the dashboard's owner and its community's operators change it",
                        code="dashboard_read_only")
    return dashboard


def get_dashboard(session: Session, *, viewer: Viewer, dashboard_id: int) -> DashboardView:
    """A dashboard the viewer may read; dashboard_not_found otherwise, as for a missing one."""
    return _view(session, viewer, _readable_dashboard(session, viewer, dashboard_id))


def update_dashboard(session: Session, *, viewer: Viewer, dashboard_id: int,
                     changes: Mapping[str, Any]) -> DashboardView:
    """Rename, describe, share or unshare (`community` None) a dashboard the viewer changes;
    only the keys given change."""
    dashboard = _editable_dashboard(session, viewer, dashboard_id)
    if changes.get("name") is not None:
        dashboard.name = changes["name"]
    if "description" in changes:
        dashboard.description = changes["description"]
    if "community" in changes:
        dashboard.community_id = _shared_community_id(session, viewer, changes["community"])
    return _touch(session, viewer, dashboard)


def _touch(session: Session, viewer: Viewer, dashboard: Dashboard) -> DashboardView:
    dashboard.updated_at = utc_now()
    session.add(dashboard)
    session.flush()
    return _view(session, viewer, dashboard)


def delete_dashboard(session: Session, *, viewer: Viewer, dashboard_id: int) -> None:
    """Delete a dashboard the viewer changes, with its widgets."""
    dashboard = _editable_dashboard(session, viewer, dashboard_id)
    session.execute(DashboardWidget.__table__.delete().where(  # type: ignore[attr-defined]
        col(DashboardWidget.dashboard_id) == dashboard_id))
    session.delete(dashboard)
    session.flush()


def add_widget(session: Session, *, viewer: Viewer, dashboard_id: int,
               spec: WidgetSpec) -> DashboardWidget:
    """A new widget on a dashboard the viewer changes, at a free place."""
    dashboard = _editable_dashboard(session, viewer, dashboard_id)
    _place(session, dashboard_id=dashboard_id, spec=spec)
    widget = _store_widget(DashboardWidget(dashboard_id=dashboard_id, kind=spec.kind, x=0, y=0,
                                           w=1, h=1, window=spec.window), spec)
    session.add(widget)
    _touch(session, viewer, dashboard)
    return widget


def _widget(session: Session, *, dashboard_id: int, widget_id: int) -> DashboardWidget:
    widget = session.get(DashboardWidget, widget_id)
    if widget is None or widget.dashboard_id != dashboard_id:
        raise NotFound(f"no widget {widget_id} on dashboard {dashboard_id}",
                       code="widget_not_found")
    return widget


def update_widget(session: Session, *, viewer: Viewer, dashboard_id: int, widget_id: int,
                  spec: WidgetSpec) -> DashboardWidget:
    """Replace what a widget shows and where it sits."""
    dashboard = _editable_dashboard(session, viewer, dashboard_id)
    widget = _widget(session, dashboard_id=dashboard_id, widget_id=widget_id)
    _place(session, dashboard_id=dashboard_id, spec=spec, replacing=widget_id)
    session.add(_store_widget(widget, spec))
    _touch(session, viewer, dashboard)
    return widget


def remove_widget(session: Session, *, viewer: Viewer, dashboard_id: int,
                  widget_id: int) -> None:
    """Take a widget off a dashboard the viewer changes."""
    dashboard = _editable_dashboard(session, viewer, dashboard_id)
    session.delete(_widget(session, dashboard_id=dashboard_id, widget_id=widget_id))
    _touch(session, viewer, dashboard)
