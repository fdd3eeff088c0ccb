"""Outgoing webhooks: endpoints per community (secret shown once, rotated with an overlap),
the outbox written with each change, deliveries signed with Standard Webhooks, retried on the
schedule, logged attempt by attempt, redelivered, replayed; the event catalog."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from sqlmodel import Session, select

from handlers import webhook_targets
from handlers.settings import Settings
from handlers.webhook_targets import target_problem
from storage.models import WebhookDelivery, WebhookOutbox
from storage.webhooks import EVENT_TYPES
from tests.factories import Api, community_doc, member_doc
from tests.webhook_receiver import Receiver

HOOKS = "/api/admin/communities/{community}/webhooks"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "webhook_allow_private_targets": True, "webhook_timeout_seconds": 2,
        "webhook_retry_schedule_seconds": [0, 0.3, 0.3], "webhook_poll_interval_seconds": 0.1})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.down()


def eventually(check: Callable[[], Any], timeout_s: float = 15) -> Any:
    """Wait until `check()` answers something true; that answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            assert answer, "the condition never held"
            return answer
        time.sleep(0.05)


def _communities(api: Api) -> None:
    """Two communities, each with members of every status and an operator."""
    for key in ("alpha", "beta"):
        api.import_yaml(community_doc(key, {
            "m0": member_doc(f"{key}-m0", user_id=f"m0@{key}.test"),
            "m1": member_doc(f"{key}-m1", user_id=f"m1@{key}.test", status="pending"),
            "m2": member_doc(f"{key}-m2", user_id=f"m2@{key}.test", status="suspended"),
            "m3": member_doc(f"{key}-m3", user_id=f"m3@{key}.test", status="inactive"),
            "op": member_doc(f"{key}-op", user_id=f"op@{key}.test", role="operator")}))
    api.runtime.jobs.join()


def _endpoint(api: Api, receiver: Receiver, community: str = "alpha",
              **body: Any) -> dict[str, Any]:
    created = api.client.post(HOOKS.format(community=community), headers=api.admin(),
                              json={"url": receiver.url, **body})
    assert created.status_code == 201, created.text
    endpoint: dict[str, Any] = created.json()
    receiver.secrets.append(endpoint["secret"])
    return endpoint


def _messages(api: Api, endpoint: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    url = HOOKS.format(community=endpoint["community"]) + f"/{endpoint['id']}/messages"
    response = api.client.get(url, headers=api.admin(), params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _attempts(api: Api, endpoint: dict[str, Any], message_id: str) -> list[dict[str, Any]]:
    url = (HOOKS.format(community=endpoint["community"])
           + f"/{endpoint['id']}/messages/{message_id}/attempts")
    response = api.client.get(url, headers=api.admin())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_endpoints_crud_secret_shown_once_and_per_community(api: Api,
                                                            receiver: Receiver) -> None:
    _communities(api)
    operator = api.login("op@alpha.test")
    created = api.client.post(HOOKS.format(community="alpha"), headers=operator,
                              json={"url": receiver.url, "description": "ops"})
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["event_types"] == sorted(EVENT_TYPES) and endpoint["enabled"] is True
    one = f"{HOOKS.format(community='alpha')}/{endpoint['id']}"
    shown = api.client.get(one, headers=operator).json()
    assert "secret" not in shown and shown["url"] == receiver.url
    listed = api.client.get(HOOKS.format(community="alpha"), headers=operator).json()
    assert [item["id"] for item in listed["items"]] == [endpoint["id"]]
    changed = api.client.patch(one, headers=operator,
                               json={"event_types": ["member.created"], "description": None})
    assert changed.status_code == 200, changed.text
    shown = api.client.get(one, headers=operator).json()
    assert shown["event_types"] == ["member.created"] and shown["description"] is None
    other = api.login("op@beta.test")
    elsewhere = f"{HOOKS.format(community='beta')}/{endpoint['id']}"
    for response in (api.client.get(elsewhere, headers=other),
                     api.client.delete(elsewhere, headers=other),
                     api.client.patch(elsewhere, headers=other, json={"enabled": False}),
                     api.client.post(f"{elsewhere}/rotate-secret", headers=other),
                     api.client.post(f"{elsewhere}/test", headers=other),
                     api.client.get(f"{elsewhere}/messages", headers=other)):
        assert response.status_code == 404 and response.json()["code"] == "webhook_not_found"
    assert api.client.get(HOOKS.format(community="alpha"), headers=other).status_code == 404
    member = api.login("m0@alpha.test")
    assert api.client.get(HOOKS.format(community="alpha"), headers=member).status_code == 403
    overseer = api.login("eye@example.org", role="overseer")
    for refused in (api.client.post(HOOKS.format(community="alpha"), headers=overseer,
                                    json={"url": receiver.url}),
                    api.client.patch(one, headers=overseer, json={"enabled": False}),
                    api.client.post(f"{one}/rotate-secret", headers=overseer),
                    api.client.post(f"{one}/replay", headers=overseer,
                                    json={"since": "2026-01-01T00:00:00Z"})):
        assert refused.status_code == 403 and refused.json()["code"] == "read_only"
    assert api.client.get(f"{one}/messages", headers=overseer).status_code == 200
    assert api.client.get(HOOKS.format(community="alpha")).status_code == 401
    assert api.client.patch(one, headers=operator, json={}).status_code == 400
    assert api.client.delete(one, headers=operator).status_code == 204
    assert api.client.get(one, headers=operator).status_code == 404


def test_refused_endpoint_urls_and_destinations(api: Api, settings: Settings) -> None:
    _communities(api)
    bad = api.client.post(HOOKS.format(community="alpha"), headers=api.admin(),
                          json={"url": "ftp://example.org/x"})
    assert bad.status_code == 400
    assert target_problem("http://example.org/x", allow_private=False) is not None
    for url, why in (("https://127.0.0.1/x", "a loopback address"),
                     ("https://localhost:8443/x", "a loopback address"),
                     ("https://10.1.2.3/x", "a private address"),
                     ("https://100.64.0.7/x", "a shared (CGNAT) address"),
                     ("https://169.254.169.254/latest/meta-data", "a cloud metadata address"),
                     ("https://[::1]/x", "a loopback address"),
                     ("https://[::ffff:10.0.0.1]/x", "a private address"),
                     ("https://[fd00:ec2::254]/x", "a private address")):
        problem = target_problem(url, allow_private=False)
        assert problem is not None and problem.endswith(why), (url, problem)
    assert target_problem("https://localhost:8443/x", allow_private=True) is None
    # A host no DNS name can spell is refused, not raised (it once stopped every delivery of
    # the batch it was in).
    assert target_problem("https://hooks\x93.example/x", allow_private=True) == (
        "the URL's host is not a valid host name")
    api.runtime.settings = settings.model_copy(update={"webhook_allow_private_targets": False})
    for url in ("http://example.org/hook", "https://[not-an-address]/hook",
                "https://hooks.example:port/x", "https://hooks\x93.example/x",
                "https://hooks..example/x", f"https://{'h' * 64}.example/x"):
        answer = api.client.post(HOOKS.format(community="alpha"), headers=api.admin(),
                                 json={"url": url})
        assert answer.status_code == 422, answer.text  # the bracketed one was a 500 once
        assert answer.json()["code"] == "invalid_webhook_url"


def test_a_loopback_name_is_refused_at_delivery_without_the_setting(
        api: Api, settings: Settings, receiver: Receiver) -> None:
    _communities(api)
    endpoint = _endpoint(api, receiver, url=f"https://localhost:{receiver.port}/hook")
    api.runtime.settings = settings.model_copy(update={"webhook_allow_private_targets": False})
    api.client.post(f"{HOOKS.format(community='alpha')}/{endpoint['id']}/test",
                    headers=api.admin())
    message = eventually(lambda: [m for m in _messages(api, endpoint) if m["attempts"]])[0]
    assert message["status"] == "failed" and "loopback" in message["last_error"]
    assert receiver.received == []
    attempt = _attempts(api, endpoint, message["id"])[0]
    assert attempt["response_status"] is None and "localhost" in attempt["error"]


def test_an_import_writes_its_event_and_the_delivery_is_signed(api: Api,
                                                               receiver: Receiver) -> None:
    _communities(api)
    _endpoint(api, receiver)
    document = community_doc("alpha", {"m0": member_doc("alpha-m0", user_id="m0@alpha.test")})
    api.import_yaml(document, force=True)
    got = receiver.wait_for(1)
    event = got[0].event
    assert event is not None and event["type"] == "community.imported"
    assert event["data"]["community"] == "alpha" and event["data"]["action"] == "replaced"
    assert got[0].headers["webhook-id"].startswith("msg_")
    api.import_yaml(document, force=True)  # unchanged: no event
    api.runtime.jobs.join()
    time.sleep(0.3)
    assert len(receiver.received) == 1
    with Session(api.engine) as session:
        delivery = session.exec(select(WebhookDelivery)).one()
        assert delivery.status == "delivered" and delivery.response_status == 204


def test_a_refused_import_writes_no_event(api: Api) -> None:
    _communities(api)
    with Session(api.engine) as session:
        before = len(session.exec(select(WebhookOutbox)).all())
    document = community_doc("alpha")
    document["members"]["alice"]["area"] = "nowhere"
    response = api.client.post("/api/admin/import", json={"bundle": document, "force": True},
                               headers=api.admin())
    assert response.status_code == 422
    with Session(api.engine) as session:
        assert len(session.exec(select(WebhookOutbox)).all()) == before


def test_member_writes_send_member_events_and_refused_ones_none(api: Api,
                                                                receiver: Receiver) -> None:
    _communities(api)
    _endpoint(api, receiver, event_types=["member.created", "member.updated",
                                          "member.deleted"])
    beta = Receiver()
    try:
        _endpoint(api, beta, community="beta")
        members = "/api/admin/communities/alpha/members"
        created = api.client.post(members, headers=api.admin(), json={
            "key": "dave", "user_id": "dave@alpha.test", "name": "Dave", "role": "consumer",
            "area": "north"})
        assert created.status_code == 201, created.text
        taken = api.client.post(members, headers=api.admin(), json={
            "key": "dave", "user_id": "other@alpha.test", "name": "D2", "role": "consumer",
            "area": "north"})
        assert taken.status_code == 409
        assert api.client.patch(f"{members}/dave", headers=api.admin(),
                                json={"name": "David"}).status_code == 200
        assert api.client.patch(f"{members}/dave", headers=api.admin(),
                                json={"area": "nowhere"}).status_code == 422
        assert api.client.delete(f"{members}/dave", headers=api.admin()).status_code == 200
        got = receiver.wait_for(3)
        time.sleep(0.3)
        assert len(receiver.received) == 3
        events = [item.event for item in got]
        assert all(events)
        assert [(e["type"], e["data"]["name"]) for e in events if e] == [
            ("member.created", "Dave"), ("member.updated", "David"),
            ("member.deleted", "David")]
        assert events[1] is not None and events[1]["data"]["changed"] == ["name"]
        assert events[2] is not None and events[2]["data"]["purged"] is False
        assert beta.received == []  # another community's endpoint hears nothing of alpha
    finally:
        beta.down()


def test_a_community_job_sends_job_succeeded(api: Api, receiver: Receiver) -> None:
    _communities(api)
    _endpoint(api, receiver, event_types=["job.succeeded", "job.failed"])
    response = api.client.post("/api/admin/import", params={"async": "true"},
                               json={"bundle": community_doc("alpha"), "force": True},
                               headers=api.admin())
    assert response.status_code == 202, response.text
    event = receiver.wait_for(1)[0].event
    assert event is not None and event["type"] == "job.succeeded"
    assert event["data"]["job_id"] == response.json()["id"]
    assert event["data"]["kind"] == "bundle_import" and event["data"]["code"] is None


def test_failures_follow_the_schedule_to_dead_letter_then_redeliver(
        api: Api, receiver: Receiver) -> None:
    _communities(api)
    endpoint = _endpoint(api, receiver)
    receiver.status, receiver.answer = 500, b"x" * 3000
    api.client.post(f"{HOOKS.format(community='alpha')}/{endpoint['id']}/test",
                    headers=api.admin())
    got = receiver.wait_for(3)
    message = eventually(lambda: _messages(api, endpoint, status="dead_letter"))[0]
    assert message["event_type"] == "ping" and message["attempts"] == 3
    assert message["response_status"] == 500 and message["next_attempt_at"] is None
    assert {item.headers["webhook-id"] for item in got} == {message["id"]}
    assert all(item.event for item in got)
    times = [item.at for item in got]
    assert times[1] - times[0] >= 0.25 and times[2] - times[1] >= 0.25  # the schedule
    attempts = _attempts(api, endpoint, message["id"])
    assert [attempt["response_status"] for attempt in attempts] == [500, 500, 500]
    assert all(len(attempt["response_body"]) == 1024 for attempt in attempts)
    assert attempts[0]["error"] == "HTTP 500" and attempts[0]["latency_ms"] >= 0
    receiver.status = 200
    one = f"{HOOKS.format(community='alpha')}/{endpoint['id']}/messages/{message['id']}"
    again = api.client.post(f"{one}/redeliver", headers=api.admin())
    assert again.status_code == 202 and again.json()["status"] == "pending"
    assert receiver.wait_for(4)[3].headers["webhook-id"] == message["id"]
    done = eventually(lambda: api.client.get(one, headers=api.admin()).json()
                      if api.client.get(one, headers=api.admin()).json()["status"]
                      == "delivered" else None)
    assert done["attempts"] == 1 and done["delivered_at"]
    assert len(_attempts(api, endpoint, message["id"])) == 4  # the log keeps all


def test_redirects_are_not_followed(api: Api, receiver: Receiver) -> None:
    _communities(api)
    endpoint = _endpoint(api, receiver)
    receiver.status, receiver.headers_out = 302, {"Location": "http://169.254.169.254/"}
    api.client.post(f"{HOOKS.format(community='alpha')}/{endpoint['id']}/test",
                    headers=api.admin())
    message = eventually(lambda: [m for m in _messages(api, endpoint) if m["attempts"]])[0]
    assert message["status"] in ("failed", "dead_letter") and message["response_status"] == 302
    assert "not followed" in message["last_error"]


def test_a_410_disables_the_endpoint_and_says_so_to_the_others(
        api: Api, receiver: Receiver) -> None:
    _communities(api)
    gone = _endpoint(api, receiver, event_types=["ping"])
    watcher = Receiver()
    try:
        _endpoint(api, watcher, event_types=["endpoint.disabled"])
        receiver.status = 410
        one = f"{HOOKS.format(community='alpha')}/{gone['id']}"
        api.client.post(f"{one}/test", headers=api.admin())
        event = watcher.wait_for(1)[0].event
        assert event is not None and event["type"] == "endpoint.disabled"
        assert event["data"]["endpoint_id"] == gone["id"] and "410" in event["data"]["reason"]
        shown = api.client.get(one, headers=api.admin()).json()
        assert shown["enabled"] is False and "410" in shown["disabled_reason"]
        assert len(receiver.received) == 1  # no retries to a disabled endpoint
        receiver.status = 204
        api.client.post(f"{one}/test", headers=api.admin())  # waits while disabled
        time.sleep(0.4)
        assert len(receiver.received) == 1
        enabled = api.client.patch(one, headers=api.admin(), json={"enabled": True})
        assert enabled.json()["enabled"] is True and enabled.json()["disabled_reason"] is None
        assert len(receiver.wait_for(3)) == 3  # the failed ping's retry and the waiting one
    finally:
        watcher.down()


def test_no_success_for_too_long_disables_the_endpoint(api: Api, settings: Settings,
                                                        receiver: Receiver) -> None:
    _communities(api)
    api.runtime.settings = settings.model_copy(update={"webhook_disable_after_seconds": 0.2})
    endpoint = _endpoint(api, receiver)
    receiver.status = 503
    api.client.post(f"{HOOKS.format(community='alpha')}/{endpoint['id']}/test",
                    headers=api.admin())
    one = f"{HOOKS.format(community='alpha')}/{endpoint['id']}"
    shown = eventually(lambda: (lambda body: body if not body["enabled"] else None)(
        api.client.get(one, headers=api.admin()).json()))
    assert shown["disabled_reason"].startswith("no successful delivery since")
    with Session(api.engine) as session:
        types = [event.event_type for event in session.exec(select(WebhookOutbox)).all()]
    assert "endpoint.disabled" in types


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(
        api: Api, settings: Settings, receiver: Receiver) -> None:
    _communities(api)
    endpoint = _endpoint(api, receiver)
    old = endpoint["secret"]
    one = f"{HOOKS.format(community='alpha')}/{endpoint['id']}"
    rotated = api.client.post(f"{one}/rotate-secret", headers=api.admin())
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    api.client.post(f"{one}/test", headers=api.admin())
    got = receiver.wait_for(1)[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        checker = Receiver(secrets=[secret])
        checker.down()
        assert checker.verify(got.body, got.headers) is not None
    api.runtime.settings = settings.model_copy(update={"webhook_secret_overlap_seconds": 0})
    api.client.post(f"{one}/rotate-secret", headers=api.admin())
    newest = api.client.post(f"{one}/rotate-secret", headers=api.admin()).json()["secret"]
    api.client.post(f"{one}/test", headers=api.admin())
    last = receiver.wait_for(2)[1]
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    receiver.secrets = [newest]
    assert receiver.verify(last.body, last.headers) is not None


def test_replay_sends_everything_since_a_time_again(api: Api, receiver: Receiver) -> None:
    _communities(api)
    endpoint = _endpoint(api, receiver, event_types=["member.updated"])
    members = "/api/admin/communities/alpha/members"
    api.client.patch(f"{members}/m0", headers=api.admin(), json={"name": "Early"})
    receiver.wait_for(1)
    middle = datetime.now(UTC)
    time.sleep(0.05)
    for name in ("Later", "Latest"):
        api.client.patch(f"{members}/m0", headers=api.admin(), json={"name": name})
    first = receiver.wait_for(3)
    one = f"{HOOKS.format(community='alpha')}/{endpoint['id']}"
    replayed = api.client.post(f"{one}/replay", headers=api.admin(),
                               json={"since": middle.isoformat()})
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["queued"] == 2
    try:
        again = receiver.wait_for(5)[3:]
    except TimeoutError:
        raise AssertionError(_messages(api, endpoint)) from None
    assert sorted(item.headers["webhook-id"] for item in again) == sorted(
        item.headers["webhook-id"] for item in first[1:])
    assert api.client.post(f"{one}/replay", headers=api.admin(),
                           json={"since": "yesterday"}).status_code == 400


def test_the_message_log_and_its_refusals(api: Api, receiver: Receiver) -> None:
    _communities(api)
    endpoint = _endpoint(api, receiver)
    one = f"{HOOKS.format(community='alpha')}/{endpoint['id']}"
    ping = api.client.post(f"{one}/test", headers=api.admin())
    assert ping.status_code == 202 and ping.json()["event_type"] == "ping"
    assert ping.headers["Location"] == f"{one}/messages/{ping.json()['id']}"
    receiver.wait_for(1)
    shown = eventually(lambda: (lambda body: body if body["status"] == "delivered" else None)(
        api.client.get(ping.headers["Location"], headers=api.admin()).json()))
    assert shown["payload"] == {"community": "alpha", "endpoint_id": endpoint["id"]}
    for _ in range(2):
        api.client.post(f"{one}/test", headers=api.admin())
    receiver.wait_for(3)
    page = api.client.get(f"{one}/messages", headers=api.admin(), params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.client.get(f"{one}/messages", headers=api.admin(),
                          params={"cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    for missing in ("msg_999999", "msg_9999999999"):
        for url in (f"{one}/messages/{missing}", f"{one}/messages/{missing}/attempts"):
            answer = api.client.get(url, headers=api.admin())
            assert answer.status_code == 404 and answer.json()["code"] == "message_not_found"
        answer = api.client.post(f"{one}/messages/{missing}/redeliver", headers=api.admin())
        assert answer.status_code == 404 and answer.json()["code"] == "message_not_found"
    assert api.client.get(f"{one}/messages/not-a-message",
                          headers=api.admin()).status_code == 400
    assert api.client.get(f"{one}/messages", headers=api.admin(),
                          params={"status": "lost"}).status_code == 400
    other = api.login("op@beta.test")
    beta = f"{HOOKS.format(community='beta')}/{endpoint['id']}"
    answer = api.client.get(f"{beta}/messages/{ping.json()['id']}", headers=other)
    assert answer.status_code == 404 and answer.json()["code"] == "webhook_not_found"


def test_the_event_catalog_has_a_schema_for_every_type_and_deliveries_match_it(
        api: Api, receiver: Receiver) -> None:
    catalog = api.client.get("/api/webhooks/event-types")
    assert catalog.status_code == 200, catalog.text
    schemas = {item["type"]: item["schema"] for item in catalog.json()["items"]}
    assert list(schemas) == list(EVENT_TYPES)
    assert "$ref" not in str(schemas)
    _communities(api)
    endpoint = _endpoint(api, receiver)
    api.client.post(f"{HOOKS.format(community='alpha')}/{endpoint['id']}/test",
                    headers=api.admin())
    api.import_yaml(community_doc("alpha"), force=True)
    api.client.patch("/api/admin/communities/alpha/members/alice", headers=api.admin(),
                     json={"role": "prosumer"})
    for item in receiver.wait_for(3):
        assert item.event is not None
        jsonschema.validate(item.event, schemas[item.event["type"]])


def test_the_address_checked_is_the_address_connected_to(
        api: Api, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    _communities(api)
    lookups: list[str] = []
    real = socket.getaddrinfo

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        """hooks.example answers loopback once, then a public address (DNS rebinding)."""
        if host != "hooks.example":
            return real(host, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "93.184.215.14"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, args[0]))]

    monkeypatch.setattr(webhook_targets.socket, "getaddrinfo", rebinding)
    endpoint = _endpoint(api, receiver, url=f"http://hooks.example:{receiver.port}/hook")
    api.client.post(f"{HOOKS.format(community='alpha')}/{endpoint['id']}/test",
                    headers=api.admin())
    got = receiver.wait_for(1)[0]
    assert lookups == ["hooks.example"]  # resolved once; connected to what was checked
    assert got.headers["host"] == f"hooks.example:{receiver.port}" and got.event is not None


def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    def mixed(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0))]

    monkeypatch.setattr(webhook_targets.socket, "getaddrinfo", mixed)
    problem = target_problem("https://public-and-loopback.example/x", allow_private=False)
    assert problem == ("the host public-and-loopback.example resolves to ::1, "
                       "a loopback address")
    target = webhook_targets.resolve_target("https://public-and-loopback.example:8443/x",
                                            allow_private=True)
    assert target.address == "93.184.215.14" and target.host_header() == (
        "public-and-loopback.example:8443")
