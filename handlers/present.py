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
    return {"id": community.key, "key": community.key, "name": community.name}


def community_summary(community: Community) -> dict[str, Any]:
    return {**community_ref(community), "description": community.description,
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
    """The rec-registry's CommunityDetail: areas as a map keyed by area key."""
    return {
        **community_summary(community),
        "created_at": timestamp(community.created_at),
        "legal": community.legal or {}, "links": community.links or {},
        "contact": community.contact or {}, "settings": community.settings or {},
        "operators": community.operators, "extra": extra(community.extra),
        "areas": {row.key: area(row) for row in areas},
        "topology": [topology_node(row) for row in nodes],
        "member_count": member_count,
    }


def member(row: Member, community_key: str) -> dict[str, Any]:
    return {"id": row.key, "key": row.key, "community_key": community_key,
            "user_id": row.user_id, "name": row.name, "type": row.type, "role": row.role,
            "area": row.area, "status": row.status, "did": row.did, "extra": extra(row.extra),
            "created_at": timestamp(row.created_at), "updated_at": timestamp(row.updated_at)}


def global_member(row: Member, community: Community) -> dict[str, Any]:
    """A member found across communities (GlobalMemberLookup)."""
    return {**member(row, community.key), "community_name": community.name}


def delivery_point(row: DeliveryPoint, owner: Member, community_key: str) -> dict[str, Any]:
    return {"id": row.dp_id, "key": row.dp_id, "type": row.type, "member_key": owner.key,
            "member_name": owner.name, "community_key": community_key,
            "description": row.description, "address": row.address, "tariff": row.tariff,
            "active": row.active, "extra": extra(row.extra)}


def member_detail(
    row: Member, community_key: str, delivery_points: list[DeliveryPoint],
    asset_counts: dict[str, int],
) -> dict[str, Any]:
    return {**member(row, community_key),
            "delivery_points": [delivery_point(dp, row, community_key)
                                for dp in delivery_points],
            "asset_counts": asset_counts}


def _object(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def asset(row: Asset, owner: Member, community: Community) -> dict[str, Any]:
    """An asset with its owner (AssetDetail, AssetListItem and GlobalAssetLookup at once)."""
    return {"id": row.key, "key": row.key, "asset_type": row.asset_type,
            "owner_key": owner.key, "owner_user_id": owner.user_id, "member_key": owner.key,
            "community_key": community.key, "community_name": community.name,
            "name": row.name, "sensor_id": row.sensor_id,
            "device": _object(row.properties.get("device")),
            "relationships": _object(row.properties.get("relationships")),
            "properties": dict(row.properties)}


def meter(row: Asset, owner: Member, pod_type: str | None) -> dict[str, Any]:
    return {"id": row.key, "key": row.key, "member_key": owner.key, "owner_key": owner.key,
            "owner_user_id": owner.user_id, "name": row.name, "sensor_id": row.sensor_id or "",
            "meter_type": row.meter_type or "", "pod": row.pod, "pod_type": pod_type,
            "protocol": row.properties.get("protocol"),
            "device": _object(row.properties.get("device"))}


def account(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "role": user.role,
            "created_at": timestamp(user.created_at)}


def api_token(token: ApiToken, owner_email: str) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "prefix": token.prefix,
            "user_email": owner_email, "created_at": timestamp(token.created_at),
            "expires_at": timestamp(token.expires_at),
            "last_used_at": timestamp(token.last_used_at)}
