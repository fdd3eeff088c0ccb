"""The energy balance as members and operators see it: no member sees another's figures."""

from __future__ import annotations

from typing import Any

from tests.factories import Api, community_doc, member_doc
from tests.handlers.test_telemetry import DAY, _ingest, _rows

URL = "/api/telemetry/communities/cer/energy-balance"
PARAMS = {"from": DAY, "to": DAY, "granularity": "day"}


def _two_area_community(api: Api) -> None:
    """Area `solo`: one consumer. Area `trio`: three prosumers and the operator."""
    members = {
        "lone": member_doc("lone", area="solo", user_id="lone@cer.test", sensors=("s-lone",)),
        **{key: member_doc(key, area="trio", role="prosumer", user_id=f"{key}@cer.test",
                           sensors=(f"s-{key}",)) for key in ("t1", "t2", "t3")},
        "op": member_doc("op", area="trio", role="operator", user_id="op@cer.test"),
    }
    document = community_doc("cer", members)
    document["community"]["areas"] = {
        key: {"name": key.title(), "topology": [f"AC-{key}"],
              "boundary": {"source": "gse_cabine_primarie", "id": f"AC-{key}"}}
        for key in ("solo", "trio")}
    document["community"]["topology"] = [{"id": f"AC-{key}", "type": "primary_substation"}
                                         for key in ("solo", "trio")]
    api.import_yaml(document)
    readings = [*_rows("s-lone", "energy_import", [700.0], start_minute=9 * 60)]
    for key, withdrawn, fed_in in (("t1", 1000.0, 100.0), ("t2", 500.0, 200.0),
                                   ("t3", 300.0, 900.0)):
        readings += _rows(f"s-{key}", "energy_import", [withdrawn], start_minute=9 * 60)
        readings += _rows(f"s-{key}", "energy_export", [fed_in], start_minute=9 * 60 + 1)
    assert _ingest(api, readings).status_code == 200


def _balance(api: Api, email: str) -> dict[str, Any]:
    response = api.client.get(URL, params=PARAMS, headers=api.login(email))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_operator_sees_every_area_and_member(api: Api) -> None:
    _two_area_community(api)
    body = _balance(api, "op@cer.test")
    areas = {area["area"]: area["totals"]["withdrawn_wh"] for area in body["areas"]}
    assert areas == {"solo": 700, "trio": 1800}
    assert body["totals"]["withdrawn_wh"] == 2500 and len(body["periods"]) == 1
    assert {share["member_key"] for share in body["members"]} == {"lone", "t1", "t2", "t3", "op"}
    assert body["min_contributors"] is None


def test_a_member_never_sees_a_one_consumer_areas_total(api: Api) -> None:
    _two_area_community(api)
    body = _balance(api, "t1@cer.test")
    # Their own area of three members: its totals, and their own part.
    assert [area["area"] for area in body["areas"]] == ["trio"]
    assert body["areas"][0]["totals"]["withdrawn_wh"] == 1800
    assert [share["member_key"] for share in body["members"]] == ["t1"]
    # The community's totals less the trio's would be lone's own withdrawal: withheld.
    assert "totals" not in body and body["periods"] == []
    assert body["min_contributors"] == 3
    assert "700" not in str(body) and "2500" not in str(body)


def test_the_lone_consumer_sees_its_part_and_the_community_but_no_area(api: Api) -> None:
    _two_area_community(api)
    body = _balance(api, "lone@cer.test")
    assert body["areas"] == []  # its own area is its own figures; the trio is not its area
    assert [share["member_key"] for share in body["members"]] == ["lone"]
    assert body["members"][0]["withdrawn_wh"] == 700
    # Four members withdraw, three feed in: enough, and less its own part the rest is the
    # trio's three members.
    assert body["totals"]["withdrawn_wh"] == 2500 and len(body["periods"]) == 1
