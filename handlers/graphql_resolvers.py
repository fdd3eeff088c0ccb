"""GraphQL resolvers, bound by name to openapi/schema.graphql: they call the storage functions
and access rules of the REST handlers (and some REST handlers themselves)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ariadne import EnumType, ObjectType, QueryType, ScalarType
from graphql import GraphQLResolveInfo
from sqlmodel import Session

from handlers import auth, jobs, telemetry
from handlers.access import admin_scope, readable_sensors
from handlers.graphql_loaders import AggregateKey, LatestKey, Loaders, SeriesKey
from handlers.instants import MAX_DAYS, iso, parse_dates, parse_range, zone_of
from handlers.problems import Problem
from handlers.runtime import Runtime, in_thread
from handlers.security import Caller
from storage import access, communities, members
from storage import assets as asset_store
from storage import delivery_points as point_store
from storage.errors import InvalidCursor
from storage.models import Community
from storage.pagination import clamp_limit
from storage.sensors import SensorHolder
from storage.telemetry import queries
from storage.telemetry.channels import BY_NAME, CATALOG

MAX_SENSORS = 1000
MAX_POINTS = (10, 5000)


@dataclass
class RequestContext:
    """What every resolver of one request sees."""

    caller: Caller
    token_info: dict[str, Any]
    runtime: Runtime
    loaders: Loaders


@dataclass(frozen=True)
class CommunityView:
    """A community as the caller sees it: all of it, or its own members' part."""

    community: Community
    sees_all: bool
    own_member_keys: frozenset[str]

    @property
    def id(self) -> int:
        assert self.community.id is not None
        return self.community.id


def _context(info: GraphQLResolveInfo) -> RequestContext:
    context: RequestContext = info.context
    return context


def _connection(nodes: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"nodes": nodes,
            "page_info": {"has_next_page": next_cursor is not None, "end_cursor": next_cursor}}


query = QueryType()


@query.field("me")
async def resolve_me(_: Any, info: GraphQLResolveInfo) -> dict[str, Any]:
    return await auth.get_me(_context(info).token_info)


@query.field("communities")
async def resolve_communities(_: Any, info: GraphQLResolveInfo, first: int,
                              after: str | None = None) -> dict[str, Any]:
    context = _context(info)
    return await in_thread(_communities_page, context, first, after)


def _communities_page(context: RequestContext, first: int, after: str | None) -> dict[str, Any]:
    caller = context.caller
    with context.runtime.session(read_only=True) as session:
        try:
            administered = admin_scope(session, caller)
        except Problem:
            administered = set()
        held = access.memberships(session, user_id=caller.email)
        own: dict[int, set[str]] = {}
        for member, community in held:
            if member.status == "active" and community.id is not None:
                own.setdefault(community.id, set()).add(member.key)
        visible = None if administered is None else administered | set(own)
        page = communities.list_communities(session, visible_ids=visible, key=None,
                                            limit=first, cursor=after)
        nodes = [CommunityView(row, administered is None or row.id in administered,
                               frozenset(own.get(row.id or 0, ()))) for row in page.items]
    return _connection(nodes, page.next_cursor)


@query.field("community")
async def resolve_community(_: Any, info: GraphQLResolveInfo, key: str) -> CommunityView:
    context = _context(info)

    def view() -> CommunityView:
        with context.runtime.session(read_only=True) as session:
            community, sees_all, _ = telemetry.community_scope(session, context.caller, key)
            assert community.id is not None
            own = telemetry.own_member_keys(session, context.caller.email, community.id)
            return CommunityView(community, sees_all, frozenset(own))

    return await in_thread(view)


def _readable(context: RequestContext, sensor_ids: list[str]) -> dict[str, SensorHolder]:
    with context.runtime.session(read_only=True) as session:
        return readable_sensors(session, context.caller, sensor_ids,
                                holders=context.runtime.holders)


@query.field("sensor")
async def resolve_sensor(_: Any, info: GraphQLResolveInfo, id: str) -> SensorHolder:
    return (await in_thread(_readable, _context(info), [id]))[id]


@query.field("sensors")
async def resolve_sensors(_: Any, info: GraphQLResolveInfo, ids: list[str]) -> list[SensorHolder]:
    if len(ids) > MAX_SENSORS:
        raise Problem(400, "too_many_sensors", f"at most {MAX_SENSORS} sensors per field")
    holders = await in_thread(_readable, _context(info), ids)
    return [holders[sensor_id] for sensor_id in ids]


@query.field("channels")
def resolve_channels(*_: Any) -> list[Any]:
    return list(CATALOG)


@query.field("jobs")
async def resolve_jobs(_: Any, info: GraphQLResolveInfo, first: int,
                       status: str | None = None) -> list[dict[str, Any]]:
    page = await jobs.list_jobs(_context(info).token_info, status=status,
                                limit=clamp_limit(first))
    return list(page["items"])


job = ObjectType("Job")


@job.field("percent")
def resolve_job_percent(parent: dict[str, Any], _: GraphQLResolveInfo) -> int:
    return int(parent["progress"]["percent"])


# -- communities and their registry ------------------------------------------------------

community_type = ObjectType("Community")


@community_type.field("key")
def resolve_community_key(parent: CommunityView, _: GraphQLResolveInfo) -> str:
    return parent.community.key


@community_type.field("name")
def resolve_community_name(parent: CommunityView, _: GraphQLResolveInfo) -> str:
    return parent.community.name


@community_type.field("timezone")
def resolve_community_timezone(parent: CommunityView, _: GraphQLResolveInfo) -> str:
    zone = (parent.community.settings or {}).get("timezone")
    return zone_of(zone if isinstance(zone, str) else None).key


@community_type.field("areas")
async def resolve_areas(parent: CommunityView, info: GraphQLResolveInfo) -> list[Any]:
    return await _read(info, lambda session: communities.areas_of(session,
                                                                  community_id=parent.id))


async def _read(info: GraphQLResolveInfo, reading: Any) -> Any:
    runtime = _context(info).runtime

    def run() -> Any:
        with runtime.session(read_only=True) as session:
            return reading(session)

    return await in_thread(run)


def _own_members(session: Session, parent: CommunityView) -> list[Any]:
    return [members.get_member(session, community_id=parent.id, key=key)
            for key in sorted(parent.own_member_keys)]


@community_type.field("members")
async def resolve_members(parent: CommunityView, info: GraphQLResolveInfo, first: int,
                          after: str | None = None) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        if not parent.sees_all:
            return _connection(_own_members(session, parent), None)
        page = members.list_members(session, community_id=parent.id, role=None, status=None,
                                    area=None, limit=first, cursor=after)
        return _connection(list(page.items), page.next_cursor)

    return await _read(info, read)


@community_type.field("deliveryPoints")
async def resolve_delivery_points(parent: CommunityView, info: GraphQLResolveInfo, first: int,
                                  after: str | None = None) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        if not parent.sees_all:
            return _connection([_point(point, member) for member in _own_members(session, parent)
                                for point in members.delivery_points_of(
                                    session, member_id=member.id)], None)
        page = point_store.list_delivery_points(session, community_id=parent.id, type=None,
                                                active=None, limit=first, cursor=after)
        return _connection([_point(point, member) for point, member in page.items],
                           page.next_cursor)

    return await _read(info, read)


def _point(point: Any, member: Any) -> dict[str, Any]:
    return {"id": point.dp_id, "type": point.type, "member_key": member.key,
            "active": point.active}


@community_type.field("assets")
async def resolve_assets(parent: CommunityView, info: GraphQLResolveInfo, first: int,
                         after: str | None = None, type: str | None = None,
                         ) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        if not parent.sees_all:
            return _connection([_asset(asset, member) for member in _own_members(session, parent)
                                for asset in members.assets_of(
                                    session, member_id=member.id, asset_type=type)], None)
        page = asset_store.list_assets(session, community_id=parent.id, asset_type=type,
                                       owner=None, limit=first, cursor=after)
        return _connection([_asset(asset, member) for asset, member in page.items],
                           page.next_cursor)

    return await _read(info, read)


def _asset(asset: Any, member: Any) -> dict[str, Any]:
    return {"key": asset.key, "type": asset.asset_type, "name": asset.name,
            "member_key": member.key, "sensor_id": asset.sensor_id}


def _community_sensors(context: RequestContext, parent: CommunityView) -> list[SensorHolder]:
    """The community's sensors the caller reads, by id: every one for those who see all of
    it, an active member's own otherwise (as GET /telemetry/communities/{key}/sensors)."""
    with context.runtime.session(read_only=True) as session:
        holders = context.runtime.holders.of_community(session, community_id=parent.id)
    visible: dict[str, SensorHolder] = {}
    for holder in holders:
        if parent.sees_all or (holder.member_key in parent.own_member_keys
                               and holder.member_status == "active"):
            visible.setdefault(holder.sensor_id, holder)
    return [visible[sensor_id] for sensor_id in sorted(visible)]


SENSORS_PAGE = 100  # the default of Community.sensors(first)


def encode_sensor_cursor(sensor_id: str) -> str:
    return base64.urlsafe_b64encode(sensor_id.encode()).decode().rstrip("=")


def decode_sensor_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCursor("the cursor is not one this server issued") from error


@community_type.field("sensors")
async def resolve_community_sensors(parent: CommunityView, info: GraphQLResolveInfo,
                                    first: int | None, after: str | None = None,
                                    ) -> dict[str, Any]:
    # An explicit `first: null` takes the schema's default, as for the other connections.
    size = max(1, min(MAX_SENSORS, SENSORS_PAGE if first is None else first))
    held = await in_thread(_community_sensors, _context(info), parent)
    if after is not None:
        last = decode_sensor_cursor(after)
        held = [holder for holder in held if holder.sensor_id > last]
    page = held[:size]
    more = len(held) > size
    return _connection(page, encode_sensor_cursor(page[-1].sensor_id) if more else None)


@community_type.field("readingTypes")
async def resolve_community_reading_types(parent: CommunityView,
                                          info: GraphQLResolveInfo) -> list[dict[str, Any]]:
    context = _context(info)
    held = await in_thread(_community_sensors, context, parent)
    return merged_reading_types(context, held)


def merged_reading_types(context: RequestContext,
                         held: Iterable[SensorHolder]) -> list[dict[str, Any]]:
    """Each channel with readings among these sensors: the first and last reading of any,
    the value of the newest."""
    merged: dict[str, dict[str, Any]] = {}
    for holder in held:
        for item in _reading_types(context, holder):
            known = merged.get(item["channel"])
            if known is None:
                merged[item["channel"]] = item
                continue
            known["first_reading"] = min(known["first_reading"], item["first_reading"])
            if item["last_reading"] > known["last_reading"]:
                known["last_reading"] = item["last_reading"]
                known["latest_value"] = item["latest_value"]
    return [merged[channel.name] for channel in CATALOG if channel.name in merged]


def _reading_types(context: RequestContext, holder: SensorHolder) -> list[dict[str, Any]]:
    return [{"channel": name, "unit": BY_NAME[name].unit, "first_reading": first,
             "last_reading": last, "latest_value": value}
            for name, first, last, value in queries.channel_overview(
                context.loaders.store, community_id=holder.community_id,
                sensor_id=holder.sensor_id)]


@community_type.field("energyBalance")
async def resolve_energy_balance(parent: CommunityView, info: GraphQLResolveInfo, **arguments: Any
                                 ) -> dict[str, Any]:
    return await telemetry.get_energy_balance(
        parent.community.key, _context(info).token_info, granularity=arguments["granularity"],
        **{"from": arguments["from"], "to": arguments["to"]})


# -- sensors and their readings ----------------------------------------------------------

sensor_type = ObjectType("Sensor")


@sensor_type.field("id")
def resolve_sensor_id(parent: SensorHolder, _: GraphQLResolveInfo) -> str:
    return parent.sensor_id


@sensor_type.field("readingTypes")
def resolve_sensor_reading_types(parent: SensorHolder,
                                 info: GraphQLResolveInfo) -> list[dict[str, Any]]:
    return _reading_types(_context(info), parent)


async def _latest(parent: SensorHolder, info: GraphQLResolveInfo,
                  channel: str | None) -> list[dict[str, Any]]:
    found = await _context(info).loaders.latest.load(
        LatestKey(parent.sensor_id, parent.community_id))
    return [{"channel": name, "ts": ts, "value": value} for name, ts, value in found
            if channel is None or name == channel]


@sensor_type.field("latest")
async def resolve_latest(parent: SensorHolder, info: GraphQLResolveInfo,
                         channel: str | None = None) -> list[dict[str, Any]]:
    return await _latest(parent, info, channel)


@sensor_type.field("power")
async def resolve_power(parent: SensorHolder, info: GraphQLResolveInfo) -> dict[str, Any] | None:
    found = await _latest(parent, info, "power")
    return found[0] if found else None


@sensor_type.field("readings")
async def resolve_readings(parent: SensorHolder, info: GraphQLResolveInfo, channel: str,
                           max_points: int, **arguments: Any) -> dict[str, Any]:
    low, high = parse_range({"from": arguments["from"], "to": arguments["to"]})
    if not MAX_POINTS[0] <= max_points <= MAX_POINTS[1]:
        raise Problem(400, "invalid_max_points",
                      f"maxPoints must be from {MAX_POINTS[0]} to {MAX_POINTS[1]}")
    found = await _context(info).loaders.series.load(SeriesKey(
        parent.sensor_id, parent.community_id, channel, low, high, max_points))
    return {"raw_count": found.raw_count, "downsampled": found.downsampled,
            "points": [{"ts": ts, "value": value}
                       for ts, value in zip(found.ts, found.value, strict=True)]}


@sensor_type.field("aggregates")
async def resolve_aggregates(parent: SensorHolder, info: GraphQLResolveInfo, channel: str,
                             bucket: str, timezone: str | None = None,
                             **arguments: Any) -> list[dict[str, Any]]:
    low, high = parse_range({"from": arguments["from"], "to": arguments["to"]})
    zone = zone_of(timezone or parent.timezone)
    buckets: list[dict[str, Any]] = await _context(info).loaders.aggregates.load(
        AggregateKey(parent.sensor_id, parent.community_id, channel, bucket, low, high,
                     zone.key))
    return buckets


@sensor_type.field("dailySummaries")
async def resolve_daily_summaries(parent: SensorHolder, info: GraphQLResolveInfo,
                                  **arguments: Any) -> list[dict[str, Any]]:
    first, last = parse_dates({"from": arguments["from"], "to": arguments["to"]},
                              max_days=MAX_DAYS["daily"])
    zone = zone_of(parent.timezone)
    return await in_thread(queries.daily_summaries, _context(info).loaders.store,
                           community_id=parent.community_id, sensor_id=parent.sensor_id,
                           first=first, last=last, zone=zone)


# -- scalars and enums -------------------------------------------------------------------

datetime_scalar = ScalarType("DateTime")


@datetime_scalar.serializer
def serialize_datetime(value: Any) -> str:
    """Epoch ms as an ISO instant in UTC; text (from a REST answer) as it is."""
    return value if isinstance(value, str) else iso(int(value))


@datetime_scalar.value_parser
def parse_datetime(value: Any) -> str:
    """Kept as text: the resolvers parse it as REST does, with REST's codes."""
    if not isinstance(value, str):
        raise ValueError("a DateTime is a string")
    return value


date_scalar = ScalarType("Date")


@date_scalar.serializer
def serialize_date(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat()


@date_scalar.value_parser
def parse_date(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a Date is a string")
    return value


bucket_enum = EnumType("Bucket", {"MINUTES_15": "15min", "HOUR": "hour", "DAY": "day",
                                  "WEEK": "week", "MONTH": "month"})
granularity_enum = EnumType("Granularity", {"HOUR": "hour", "DAY": "day", "MONTH": "month"})

BINDABLES = [query, job, community_type, sensor_type, datetime_scalar, date_scalar,
             bucket_enum, granularity_enum]
