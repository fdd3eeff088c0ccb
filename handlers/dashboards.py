"""Saved dashboards and their widgets: create, list, get, update, delete; add, replace, remove
widgets."""

from __future__ import annotations

from typing import Any

from handlers.access import caller_of
from handlers.present import timestamp
from handlers.runtime import current_runtime
from storage import dashboards as dashboard_store
from storage.dashboards import DashboardView, Viewer, WidgetSpec
from storage.models import DashboardWidget


def viewer_of(token_info: dict[str, Any]) -> Viewer:
    """The caller as dashboards see it: platform admins change, overseers read, every shared
    dashboard."""
    caller = caller_of(token_info)
    return Viewer(user_id=caller.user_id, email=caller.email,
                  reads_all=caller.is_platform_admin or caller.role == "overseer",
                  writes_all=caller.is_platform_admin)


def widget_spec(body: dict[str, Any]) -> WidgetSpec:
    """A widget as the request body gives it."""
    return WidgetSpec(kind=body["kind"], title=body.get("title"), x=body["x"], y=body["y"],
                      w=body["w"], h=body["h"], window=body["window"],
                      sensors=list(body.get("sensors", [])), channel=body.get("channel"),
                      minimum=body.get("min"), maximum=body.get("max"),
                      community=body.get("community"))


def present_widget(widget: DashboardWidget) -> dict[str, Any]:
    """A widget as the API shows it."""
    return {"id": widget.id, "kind": widget.kind, "title": widget.title, "x": widget.x,
            "y": widget.y, "w": widget.w, "h": widget.h, "window": widget.window,
            "sensors": list(widget.sensors), "channel": widget.channel, "min": widget.minimum,
            "max": widget.maximum, "community": widget.community_key}


def present_dashboard(view: DashboardView) -> dict[str, Any]:
    """A dashboard as the API shows it to its viewer."""
    dashboard = view.dashboard
    return {"id": dashboard.id, "name": dashboard.name, "description": dashboard.description,
            "owner": view.owner, "community": view.community, "editable": view.editable,
            "created_at": timestamp(dashboard.created_at),
            "updated_at": timestamp(dashboard.updated_at),
            "widgets": [present_widget(widget) for widget in view.widgets]}


async def list_dashboards(token_info: dict[str, Any], limit: int | None = None,
                          cursor: str | None = None) -> dict[str, Any]:
    with current_runtime().session() as session:
        page = dashboard_store.list_dashboards(session, viewer=viewer_of(token_info),
                                               limit=limit, cursor=cursor)
        return {"items": [present_dashboard(view) for view in page.items],
                "next_cursor": page.next_cursor}


async def create_dashboard(body: dict[str, Any],
                           token_info: dict[str, Any]) -> tuple[dict[str, Any], int]:
    with current_runtime().session() as session:
        view = dashboard_store.create_dashboard(
            session, viewer=viewer_of(token_info), name=body["name"],
            description=body.get("description"), community_key=body.get("community"),
            widgets=[widget_spec(widget) for widget in body.get("widgets", [])])
        return present_dashboard(view), 201


async def get_dashboard(dashboard_id: int, token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        return present_dashboard(dashboard_store.get_dashboard(
            session, viewer=viewer_of(token_info), dashboard_id=dashboard_id))


async def update_dashboard(dashboard_id: int, body: dict[str, Any],
                           token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        return present_dashboard(dashboard_store.update_dashboard(
            session, viewer=viewer_of(token_info), dashboard_id=dashboard_id, changes=body))


async def delete_dashboard(dashboard_id: int, token_info: dict[str, Any]) -> tuple[None, int]:
    with current_runtime().session() as session:
        dashboard_store.delete_dashboard(session, viewer=viewer_of(token_info),
                                         dashboard_id=dashboard_id)
    return None, 204


async def add_dashboard_widget(dashboard_id: int, body: dict[str, Any],
                               token_info: dict[str, Any]) -> tuple[dict[str, Any], int]:
    with current_runtime().session() as session:
        widget = dashboard_store.add_widget(session, viewer=viewer_of(token_info),
                                            dashboard_id=dashboard_id, spec=widget_spec(body))
        return present_widget(widget), 201


async def update_dashboard_widget(dashboard_id: int, widget_id: int, body: dict[str, Any],
                                  token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        widget = dashboard_store.update_widget(session, viewer=viewer_of(token_info),
                                               dashboard_id=dashboard_id, widget_id=widget_id,
                                               spec=widget_spec(body))
        return present_widget(widget)


async def remove_dashboard_widget(dashboard_id: int, widget_id: int,
                                  token_info: dict[str, Any]) -> tuple[None, int]:
    with current_runtime().session() as session:
        dashboard_store.remove_widget(session, viewer=viewer_of(token_info),
                                      dashboard_id=dashboard_id, widget_id=widget_id)
    return None, 204
