"""Telemetry queries: the channel catalog, raw readings, series, aggregates, latest values,
batch metrics, daily summaries, a community's sensors and energy balance, exports."""

from __future__ import annotations

from typing import Any

from handlers.access import admin_community, caller_of, readable_sensors, series_of
from handlers.downloads import SpooledFileResponse
from handlers.instants import MAX_DAYS, iso, iso_many, parse_dates, parse_range, zone_of
from handlers.job_submit import submit_export
from handlers.problems import Problem
from handlers.runtime import current_runtime, in_thread
from storage import access
from storage.telemetry import balance, balance_view, queries
from storage.telemetry.channels import BY_NAME, CATALOG
from storage.telemetry.export import export_file
from storage.telemetry.export_size import count_export_rows

EXPORT_MEDIA_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}


async def list_channels(token_info: dict[str, Any]) -> dict[str, Any]:
    return {"channels": [{"name": channel.name, "unit": channel.unit, "kind": channel.kind,
                          "description": channel.description} for channel in CATALOG]}


def _readable(token_info: dict[str, Any], sensor_ids: list[str]) -> dict[str, Any]:
    runtime = current_runtime()
    with runtime.session() as session:
        return readable_sensors(session, caller_of(token_info), sensor_ids,
                                holders=runtime.holders)


async def list_readings(sensor_id: str, channel: str, token_info: dict[str, Any],
                        limit: int | None = None, cursor: str | None = None,
                        **arguments: str) -> dict[str, Any]:
    low, high = parse_range(arguments)
    holder = _readable(token_info, [sensor_id])[sensor_id]
    page, next_cursor = await in_thread(
        queries.readings_page, current_runtime().telemetry, community_id=holder.community_id,
        sensor_id=sensor_id, channel=channel, low=low, high=high, limit=limit or 100, after=cursor)
    return {"sensor_id": sensor_id, "channel": channel,
            "items": [{"ts": ts, "value": value} for ts, value in zip(
                iso_many([ts for ts, _ in page]), [value for _, value in page], strict=True)],
            "next_cursor": next_cursor}


async def get_series(sensor_id: list[str], channel: str, token_info: dict[str, Any],
                     max_points: int = 1000, **arguments: str) -> dict[str, Any]:
    low, high = parse_range(arguments)
    sensors = series_of(_readable(token_info, sensor_id))
    found = await in_thread(queries.series, current_runtime().telemetry,
                            sensors={sensor: sensors[sensor] for sensor in sensor_id},
                            channel=channel, low=low, high=high,
                            max_points=max_points)
    return {"channel": channel, "from": iso(low), "to": iso(high), "max_points": max_points,
            "series": [{"sensor_id": item.sensor_id, "raw_count": item.raw_count,
                        "downsampled": item.downsampled, "ts": iso_many(item.ts),
                        "value": item.value} for item in found]}


async def get_aggregates(channel: str, bucket: str, token_info: dict[str, Any],
                         sensor_id: list[str] | None = None, community: str | None = None,
                         timezone: str | None = None, **arguments: str) -> dict[str, Any]:
    low, high = parse_range(arguments)
    if (sensor_id is None) == (community is None):
        raise Problem(400, "sensors_or_community",
                      "give either sensor_id (one or more) or community, not both")
    if sensor_id is not None:
        holders = _readable(token_info, sensor_id)
        sensors = {sensor: holders[sensor].community_id for sensor in sensor_id}
    else:
        assert community is not None
        holders = await in_thread(_community_sensors, token_info, community)
        sensors = {sensor: holders[sensor].community_id for sensor in sorted(holders)}
    zones = {holder.timezone for holder in holders.values()}
    zone = zone_of(timezone or (zones.pop() if len(zones) == 1 else None))
    found = await in_thread(queries.aggregates, current_runtime().telemetry,
                            sensors=sensors, channel=channel, low=low, high=high,
                            bucket=bucket, zone=zone)
    items = _bucket_items(found.columns)
    return {"channel": channel, "bucket": bucket, "timezone": zone.key, "from": iso(low),
            "to": iso(high),
            "series": [{"sensor_id": key, "buckets": items[begin:end]}
                       for key, (begin, end) in found.spans.items()]}


def _bucket_items(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every bucket of an answer as its JSON object (the sensors share their bucket edges,
    so each edge is written as text once)."""
    edges = sorted({*columns["start"], *columns["end"]})
    names = dict(zip(edges, iso_many(edges), strict=True))
    return [{"start": names[start], "end": names[end], "count": count, "avg": avg, "min": low,
             "max": high, "sum": total, "first": first, "last": last}
            for start, end, count, avg, low, high, total, first, last in zip(
                *(columns[name] for name in queries.BUCKET_FIELDS), strict=True)]


def _community_sensors(token_info: dict[str, Any], community_key: str) -> dict[str, Any]:
    """The sensors of a community the caller may read, by id: all of them for its
    administrators (and platform admins, overseers), an active member's own otherwise; 404
    for a community the caller neither administers nor belongs to, 403 not_a_member for a
    member whose membership is not active."""
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        _, sees_all, holders = community_scope(session, caller, community_key)
    visible: dict[str, Any] = {}
    for holder in holders:
        if sees_all or (holder.member_user_id == caller.email
                        and holder.member_status == "active"):
            visible.setdefault(holder.sensor_id, holder)
    return visible


def community_scope(session: Any, caller: Any, community_key: str) -> tuple[Any, bool, Any]:
    """The community (404 for a caller neither administering nor belonging to it, 403
    not_a_member for a member whose membership is not active), whether the caller sees all
    of it, and the holders of its sensors."""
    community = _visible_community(session, caller, community_key)
    sees_all = _is_admin_of(session, caller, community)
    if not sees_all and not own_member_keys(session, caller.email, community.id):
        raise Problem(403, "not_a_member",
                      f"the caller is not an active member of community {community_key!r}")
    holders = current_runtime().holders.of_community(session, community_id=community.id)
    return community, sees_all, holders


def _is_admin_of(session: Any, caller: Any, community: Any) -> bool:
    if caller.is_platform_admin or caller.role == "overseer":
        return True
    return community.id in access.administered_community_ids(session, user_id=caller.email)


def _visible_community(session: Any, caller: Any, community_key: str) -> Any:
    """The community, for its administrators and its members; 404 for anyone else."""
    memberships = access.memberships(session, user_id=caller.email)
    for _, community in memberships:
        if community.key == community_key:
            return community
    try:
        return admin_community(session, caller, community_key)
    except Problem as problem:
        if problem.status == 403:
            raise Problem(404, "community_not_found",
                          f"no community {community_key!r}") from problem
        raise


async def get_latest(sensor_id: list[str], token_info: dict[str, Any],
                     channel: str | None = None) -> dict[str, Any]:
    sensors = series_of(_readable(token_info, sensor_id))
    items = queries.latest(current_runtime().telemetry,
                           sensors={sensor: sensors[sensor] for sensor in sensor_id},
                           channel=channel)
    return {"items": [{"sensor_id": sensor, "channel": name, "ts": iso(ts), "value": value}
                      for sensor, name, ts, value in items]}


async def get_metrics(sensor_id: list[str], token_info: dict[str, Any]) -> dict[str, Any]:
    holders = _readable(token_info, sensor_id)
    store = current_runtime().telemetry
    items = []
    for sensor in dict.fromkeys(sensor_id):
        zone = zone_of(holders[sensor].timezone)
        figures = await in_thread(queries.metrics, store,
                                  community_id=holders[sensor].community_id, sensor_id=sensor,
                                  zone=zone)
        power = figures["power"]
        items.append({"sensor_id": sensor, "timezone": zone.key,
                      "day": figures["day"].isoformat(),
                      "power": None if power is None else {"ts": iso(power[0]),
                                                           "value": power[1]},
                      **{name: figures[name] for name in
                         ("energy_import_wh", "energy_export_wh", "energy_produced_wh")}})
    return {"items": items}


async def get_daily_summaries(sensor_id: str, token_info: dict[str, Any],
                              **arguments: str) -> dict[str, Any]:
    first, last = parse_dates(arguments, max_days=MAX_DAYS["daily"])
    holders = _readable(token_info, [sensor_id])
    zone = zone_of(holders[sensor_id].timezone)
    days = await in_thread(queries.daily_summaries, current_runtime().telemetry,
                           community_id=holders[sensor_id].community_id,
                           sensor_id=sensor_id, first=first, last=last, zone=zone)
    return {"sensor_id": sensor_id, "timezone": zone.key, "from": first.isoformat(),
            "to": last.isoformat(),
            "days": [{**day, "day": day["day"].isoformat()} for day in days]}


async def list_community_sensors(community_key: str,
                                 token_info: dict[str, Any]) -> dict[str, Any]:
    holders = await in_thread(_community_sensors, token_info, community_key)
    store = current_runtime().telemetry
    listed = []
    for sensor_id in sorted(holders):
        holder = holders[sensor_id]
        channels = queries.channel_overview(store, community_id=holder.community_id,
                                            sensor_id=sensor_id)
        listed.append({
            "sensor_id": sensor_id, "asset_key": holder.asset_key,
            "member_key": holder.member_key, "area": holder.area,
            "meter_type": holder.meter_type,
            "channels": [{"channel": name, "unit": BY_NAME[name].unit, "first_ts": iso(first),
                          "last_ts": iso(last), "latest_value": value}
                         for name, first, last, value in channels]})
    return {"community": community_key, "sensors": listed}


async def get_energy_balance(community_key: str, token_info: dict[str, Any],
                             granularity: str = "day", **arguments: str) -> dict[str, Any]:
    first, last = parse_dates(arguments, max_days=MAX_DAYS["balance"])
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community, sees_all, holders = community_scope(session, caller, community_key)
        member_areas = dict(access.active_member_areas(session, community_id=community.id))
        own = set() if sees_all else own_member_keys(session, caller.email, community.id)
    settings = community.settings or {}
    rate = settings.get("incentive_eur_per_mwh")
    rate = float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None
    zone = zone_of(settings.get("timezone") if isinstance(settings.get("timezone"), str)
                   else None)
    meters = [balance.Meter(holder.sensor_id, holder.member_key, holder.area)
              for holder in holders if holder.member_key in member_areas]
    result = await in_thread(balance.energy_balance, current_runtime().telemetry,
                             community_id=community.id, meters=meters,
                             member_areas=member_areas, first=first, last=last,
                             zone=zone, granularity=granularity, rate=rate)
    if not sees_all:
        result["members"] = [share for share in result["members"]
                             if share["member_key"] in own]
        result = balance_view.member_view(
            result, own_areas={member_areas[key] for key in own if key in member_areas},
            min_contributors=current_runtime().settings.balance_min_contributors)
    else:
        del result["contributors"]
    for section in [result, *result["areas"]]:
        for period in section["periods"]:
            period["start"] = iso(period["start"])
    return {"community": community_key, "timezone": zone.key, "from": first.isoformat(),
            "to": last.isoformat(), "granularity": granularity, "incentive_eur_per_mwh": rate,
            "min_contributors": None if sees_all
            else current_runtime().settings.balance_min_contributors, **result}


def own_member_keys(session: Any, email: str, community_id: int) -> set[str]:
    """The keys of the caller's active members in the community."""
    return {member.key for member, community in access.memberships(session, user_id=email)
            if community.id == community_id and member.status == "active"}


async def export_readings(sensor_id: list[str], token_info: dict[str, Any],
                          channel: str | None = None, format: str = "csv",
                          **arguments: str) -> Any:
    low, high = parse_range(arguments)
    sensors = series_of(_readable(token_info, sensor_id))
    chosen = {sensor: sensors[sensor] for sensor in sensor_id}
    filename = f"readings-{iso(low)[:10]}-{iso(high)[:10]}.{format}"
    runtime = current_runtime()
    rows = await in_thread(count_export_rows, runtime.telemetry, sensors=chosen,
                           channel=channel, low=low, high=high)
    if rows >= runtime.settings.export_job_min_rows:
        return await in_thread(submit_export, runtime, caller_of(token_info), chosen,
                               channel=channel, low=low, high=high, file_format=format,
                               rows=rows, filename=filename)
    path = await in_thread(export_file, runtime.telemetry, sensors=chosen,
                           channel=channel, low=low, high=high, file_format=format)
    return SpooledFileResponse(
        path, media_type=EXPORT_MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
