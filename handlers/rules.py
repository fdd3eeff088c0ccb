"""A community's threshold and silence rules: list, create, get, replace, delete, and the
events each fired."""

from __future__ import annotations

from typing import Any

from handlers.access import admin_community, caller_of
from handlers.instants import iso
from handlers.present import timestamp
from handlers.runtime import current_runtime
from storage import rules as rule_store
from storage.models import RuleEvent, ThresholdRule


def present_rule(rule: ThresholdRule, community_key: str) -> dict[str, Any]:
    """A rule as the API shows it."""
    shown = {"id": rule.id, "community": community_key, "name": rule.name, "kind": rule.kind,
             "sensor_id": rule.sensor_id, "channel": rule.channel, "operator": rule.operator,
             "threshold": rule.threshold, "threshold_high": rule.threshold_high,
             "for_seconds": rule.for_seconds, "silence_seconds": rule.silence_seconds,
             "cooldown_seconds": rule.cooldown_seconds, "enabled": rule.enabled,
             "actions": list(rule.actions), "created_at": timestamp(rule.created_at),
             "updated_at": timestamp(rule.updated_at)}
    return {name: value for name, value in shown.items()
            if value is not None or name != "operator"}


def present_event(event: RuleEvent) -> dict[str, Any]:
    """A rule's firing and the reading that fired it."""
    return {"id": event.id, "rule_id": event.rule_id, "fired_at": timestamp(event.fired_at),
            "reading": {"sensor_id": event.sensor_id, "channel": event.channel,
                        "ts": iso(rule_store.epoch_ms(event.reading_ts)),
                        "value": event.value}}


def _spec(body: dict[str, Any]) -> rule_store.RuleSpec:
    return rule_store.RuleSpec(
        name=body["name"], kind=body.get("kind", "threshold"), sensor_id=body.get("sensor_id"),
        channel=body["channel"], operator=body.get("operator"),
        threshold=body.get("threshold"), threshold_high=body.get("threshold_high"),
        for_seconds=body.get("for_seconds", 0), silence_seconds=body.get("silence_seconds"),
        cooldown_seconds=body.get("cooldown_seconds", 0), enabled=body.get("enabled", True),
        actions=tuple(body.get("actions", ["event"])))


async def list_rules(community_key: str, token_info: dict[str, Any],
                     limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        page = rule_store.list_rules(session, community_id=community.id, limit=limit,
                                     cursor=cursor)
        return {"items": [present_rule(rule, community.key) for rule in page.items],
                "next_cursor": page.next_cursor}


async def create_rule(community_key: str, body: dict[str, Any],
                      token_info: dict[str, Any]) -> tuple[dict[str, Any], int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        rule = rule_store.create_rule(session, community_id=community.id, spec=_spec(body))
        return present_rule(rule, community.key), 201


async def get_rule(community_key: str, rule_id: int,
                   token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        rule = rule_store.get_rule(session, community_id=community.id, rule_id=rule_id)
        return present_rule(rule, community.key)


async def replace_rule(community_key: str, rule_id: int, body: dict[str, Any],
                       token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        rule = rule_store.replace_rule(session, community_id=community.id, rule_id=rule_id,
                                       spec=_spec(body))
        return present_rule(rule, community.key)


async def delete_rule(community_key: str, rule_id: int,
                      token_info: dict[str, Any]) -> tuple[None, int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        rule_store.delete_rule(session, community_id=community.id, rule_id=rule_id)
    return None, 204


async def list_rule_events(community_key: str, rule_id: int, token_info: dict[str, Any],
                           limit: int | None = None,
                           cursor: str | None = None) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        page = rule_store.list_events(session, community_id=community.id, rule_id=rule_id,
                                      limit=limit, cursor=cursor)
        return {"items": [present_event(event) for event in page.items],
                "next_cursor": page.next_cursor}
