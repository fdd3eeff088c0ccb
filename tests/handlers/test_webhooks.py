"""Outgoing webhooks: endpoints per community (secret shown once), the outbox written with the
import, deliveries signed with Standard Webhooks and retried."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import Session, select
from standardwebhooks import Webhook

from handlers.settings import Settings
from handlers.webhook_delivery import deliver_pending, target_problem
from storage.models import WebhookDelivery, WebhookOutbox
from tests.factories import Api, community_doc, member_doc


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private_targets": True,
                                       "webhook_timeout_seconds": 5})


class Receiver:
    """A local HTTP endpoint recording what it gets, answering `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({key.lower(): value for key, value
                                           in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def _two_communities(api: Api) -> None:
    for key in ("alpha", "beta"):
        api.import_yaml(community_doc(key, {
            "m0": member_doc(f"{key}-m0", user_id=f"m0@{key}.test"),
            "op": member_doc(f"{key}-op", user_id=f"op@{key}.test", role="operator")}))


def test_endpoints_crud_secret_shown_once_and_per_community(api: Api,
                                                            receiver: Receiver) -> None:
    _two_communities(api)
    operator = api.login("op@alpha.test")
    created = api.client.post("/api/admin/communities/alpha/webhooks", headers=operator,
                              json={"url": receiver.url, "description": "ops"})
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["event_types"] == ["community.imported", "rule.triggered", "sensor.silent"]
    shown = api.client.get(f"/api/admin/communities/alpha/webhooks/{endpoint['id']}",
                           headers=operator).json()
    assert "secret" not in shown and shown["url"] == receiver.url
    listed = api.client.get("/api/admin/communities/alpha/webhooks", headers=operator).json()
    assert [item["id"] for item in listed["items"]] == [endpoint["id"]]
    other = api.login("op@beta.test")
    for response in (
            api.client.get(f"/api/admin/communities/beta/webhooks/{endpoint['id']}",
                           headers=other),
            api.client.delete(f"/api/admin/communities/beta/webhooks/{endpoint['id']}",
                              headers=other)):
        assert response.status_code == 404 and response.json()["code"] == "webhook_not_found"
    assert api.client.get("/api/admin/communities/alpha/webhooks",
                          headers=other).status_code == 404
    member = api.login("m0@alpha.test")
    assert api.client.get("/api/admin/communities/alpha/webhooks",
                          headers=member).status_code == 403
    overseer = api.login("eye@example.org", role="overseer")
    refused = api.client.post("/api/admin/communities/alpha/webhooks", headers=overseer,
                              json={"url": receiver.url})
    assert refused.status_code == 403 and refused.json()["code"] == "read_only"
    assert api.client.get("/api/admin/communities/alpha/webhooks").status_code == 401
    deleted = api.client.delete(f"/api/admin/communities/alpha/webhooks/{endpoint['id']}",
                                headers=operator)
    assert deleted.status_code == 204
    assert api.client.get(f"/api/admin/communities/alpha/webhooks/{endpoint['id']}",
                          headers=operator).status_code == 404


def test_refused_endpoint_urls(api: Api, settings: Settings) -> None:
    _two_communities(api)
    bad = api.client.post("/api/admin/communities/alpha/webhooks", headers=api.admin(),
                          json={"url": "ftp://example.org/x"})
    assert bad.status_code == 400
    assert target_problem("http://example.org/x", allow_private=False) is not None
    assert target_problem("https://127.0.0.1/x", allow_private=False) == (
        "the host resolves to an address that is not public")
    assert target_problem("https://10.1.2.3/x", allow_private=False) is not None
    api.runtime.settings = settings.model_copy(update={"webhook_allow_private_targets": False})
    insecure = api.client.post("/api/admin/communities/alpha/webhooks", headers=api.admin(),
                               json={"url": "http://example.org/hook"})
    assert insecure.status_code == 422 and insecure.json()["code"] == "invalid_webhook_url"
    for broken in ("https://[not-an-address]/hook", "https://hooks.example:port/x"):
        answer = api.client.post("/api/admin/communities/alpha/webhooks", headers=api.admin(),
                                 json={"url": broken})
        assert answer.status_code == 422, answer.text  # found by schemathesis: was a 500
        assert answer.json()["code"] == "invalid_webhook_url"


def test_an_import_writes_its_event_and_the_delivery_is_signed(api: Api,
                                                               receiver: Receiver) -> None:
    _two_communities(api)
    secret = api.client.post("/api/admin/communities/alpha/webhooks", headers=api.admin(),
                             json={"url": receiver.url}).json()["secret"]
    document = community_doc("alpha", {"m0": member_doc("alpha-m0", user_id="m0@alpha.test")})
    api.import_yaml(document, force=True)
    api.runtime.jobs.join()  # the import woke the delivery actor up
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "community.imported"
    assert event["data"]["community"] == "alpha" and event["data"]["action"] == "replaced"
    assert headers["webhook-id"].startswith("msg_")
    api.import_yaml(document, force=True)  # unchanged: no event
    api.runtime.jobs.join()
    assert len(receiver.received) == 1
    with Session(api.engine) as session:
        delivery = session.exec(select(WebhookDelivery)).one()
        assert delivery.status == "delivered" and delivery.response_status == 204


def test_a_refused_import_writes_no_event(api: Api) -> None:
    _two_communities(api)
    with Session(api.engine) as session:
        before = len(session.exec(select(WebhookOutbox)).all())
    document = community_doc("alpha")
    document["members"]["alice"]["area"] = "nowhere"
    response = api.client.post("/api/admin/import", json={"bundle": document, "force": True},
                               headers=api.admin())
    assert response.status_code == 422
    with Session(api.engine) as session:
        assert len(session.exec(select(WebhookOutbox)).all()) == before


def test_a_failed_delivery_is_retried_later(api: Api, receiver: Receiver) -> None:
    _two_communities(api)
    api.client.post("/api/admin/communities/alpha/webhooks", headers=api.admin(),
                    json={"url": receiver.url})
    receiver.status = 500
    api.import_yaml(community_doc("alpha"), force=True)
    api.runtime.jobs.join()
    with Session(api.engine) as session:
        delivery = session.exec(select(WebhookDelivery)).one()
        assert delivery.status == "pending" and delivery.attempts == 1
        assert delivery.response_status == 500 and delivery.last_error == "HTTP 500"
    assert deliver_pending(api.runtime) == 0  # not due yet
    assert len(receiver.received) == 1
