"""Shapes stored objects into the JSON the spec documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.graph import BUNDLE_SHAPE_KEY
from storage.models import (
    ApiToken,
    Area,
    Asset,
    Community,
    DeliveryPoint,
    Member,
    TopologyNode,
    User,
)


def timestamp(value: datetime | None) -> str | None:
    """An ISO 8601 instant, or None."""
    return value.isoformat() if value is not None else None


def extra(values: dict[str, Any]) -> dict[str, Any]:
    """Unknown bundle properties, without the importer's private bookkeeping key."""
    return {key: value for key, value in values.items() if key != BUNDLE_SHAPE_KEY}


def community_ref(community: Community) -> dict[str, Any]:
    return {"key": community.key, "name": community.name}


def community_summary(community: Community) -> dict[str, Any]:
    return {"key": community.key, "name": community.name, "description": community.description,
            "updated_at": timestamp(community.updated_at)}


def area(row: Area) -> dict[str, Any]:
    return {"key": row.key, "name": row.name,
            "boundary": {"source": row.boundary_source, "id": row.boundary_id},
            "topology": list(row.topology), "extra": extra(row.extra)}


def topology_node(row: TopologyNode) -> dict[str, Any]:
    return {"id": row.node_id, "type": row.type, "name": row.name, "parent": row.parent,
            "operator_id": row.operator_id, "extra": extra(row.extra)}


def community_detail(
    community: Community, areas: list[Area], nodes: list[TopologyNode], member_count: int
) -> dict[str, Any]:
    return {
        **community_summary(community),
        "legal": community.legal, "links": community.links, "contact": community.contact,
        "settings": community.settings, "operators": community.operators,
        "extra": extra(community.extra),
        "areas": [area(row) for row in areas],
        "topology": [topology_node(row) for row in nodes],
        "member_count": member_count,
    }


def member(row: Member, community_key: str) -> dict[str, Any]:
    return {"key": row.key, "community_key": community_key, "user_id": row.user_id,
            "name": row.name, "type": row.type, "role": row.role, "area": row.area,
            "status": row.status, "did": row.did, "extra": extra(row.extra),
            "created_at": timestamp(row.created_at), "updated_at": timestamp(row.updated_at)}


def delivery_point(row: DeliveryPoint, member_key: str, community_key: str) -> dict[str, Any]:
    return {"id": row.dp_id, "type": row.type, "member_key": member_key,
            "community_key": community_key, "description": row.description,
            "address": row.address, "tariff": row.tariff, "active": row.active,
            "extra": extra(row.extra)}


def member_detail(
    row: Member, community_key: str, delivery_points: list[DeliveryPoint],
    asset_counts: dict[str, int],
) -> dict[str, Any]:
    return {**member(row, community_key),
            "delivery_points": [delivery_point(dp, row.key, community_key)
                                for dp in delivery_points],
            "asset_counts": asset_counts}


def asset(row: Asset, member_key: str, community_key: str) -> dict[str, Any]:
    return {"key": row.key, "asset_type": row.asset_type, "member_key": member_key,
            "community_key": community_key, "name": row.name, "sensor_id": row.sensor_id,
            "properties": dict(row.properties)}


def meter(row: Asset, member_key: str, pod_type: str | None) -> dict[str, Any]:
    return {"key": row.key, "member_key": member_key, "name": row.name,
            "sensor_id": row.sensor_id or "", "meter_type": row.meter_type or "",
            "pod": row.pod, "pod_type": pod_type, "protocol": row.properties.get("protocol")}


def account(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "role": user.role,
            "created_at": timestamp(user.created_at)}


def api_token(token: ApiToken, owner_email: str) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "prefix": token.prefix,
            "user_email": owner_email, "created_at": timestamp(token.created_at),
            "expires_at": timestamp(token.expires_at),
            "last_used_at": timestamp(token.last_used_at)}
