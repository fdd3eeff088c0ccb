"""A user's program on the generated Python client: `python drive.py BASE_URL EMAIL PASSWORD BUNDLE`
(BUNDLE: the path of bundles/examples/valle-verde.yaml)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from commonwatt_client import AuthenticatedClient, Client
from commonwatt_client.api.assets import get_asset, list_assets
from commonwatt_client.api.auth import login
from commonwatt_client.api.management import import_yaml_bundles
from commonwatt_client.api.members import list_members
from commonwatt_client.api.telemetry import export_readings, get_series, ingest_readings
from commonwatt_client.models import (
    AccessToken,
    Asset,
    AssetPage,
    Channel,
    ExportFormat,
    IngestResult,
    InvalidRequest,
    LoginRequest,
    MemberPage,
    MultiImportReport,
    Problem,
    Reading,
    ReadingRefusalCode,
    ReadingRows,
    ReadingsRefused,
    SeriesResult,
)
from commonwatt_client.types import File

COMMUNITY = "valle-verde"
SENSOR = "sens-0010"
FROM = datetime(2026, 3, 2, tzinfo=UTC)
TO = datetime(2026, 3, 3, tzinfo=UTC)


def log_in(base_url: str, email: str, password: str) -> AuthenticatedClient:
    token = login.sync(client=Client(base_url=base_url),
                       body=LoginRequest(email=email, password=password))
    assert isinstance(token, AccessToken), token
    return AuthenticatedClient(base_url=base_url, token=token.access_token)


def import_bundle(client: AuthenticatedClient, bundle: Path) -> None:
    body = File(payload=BytesIO(bundle.read_bytes()), file_name=bundle.name)
    report = import_yaml_bundles.sync(client=client, body=body, force=True)
    assert isinstance(report, MultiImportReport), report
    assert [item.community_key for item in report.reports] == [COMMUNITY]
    print(f"import: {report.reports[0].action}")


def every_member_key(client: AuthenticatedClient) -> list[str]:
    keys: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = (list_members.sync(COMMUNITY, client=client, limit=2) if cursor is None else
                list_members.sync(COMMUNITY, client=client, limit=2, cursor=cursor))
        assert isinstance(page, MemberPage), page
        keys.extend(member.key for member in page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    whole = list_members.sync(COMMUNITY, client=client, limit=500)
    assert isinstance(whole, MemberPage) and whole.next_cursor is None
    assert keys == [member.key for member in whole.items] and pages > 1
    print(f"members: {len(keys)} in {pages} pages")
    return keys


def one_asset(client: AuthenticatedClient) -> Asset:
    page = list_assets.sync(COMMUNITY, client=client, limit=1)
    assert isinstance(page, AssetPage) and page.items, page
    asset = get_asset.sync(COMMUNITY, page.items[0].key, client=client)
    assert isinstance(asset, Asset), asset
    print(f"asset: {asset.key} ({asset.asset_type})")
    return asset


def ingest(client: AuthenticatedClient) -> None:
    readings = [Reading(sensor_id=SENSOR, channel=Channel.POWER,
                        ts=f"2026-03-02T10:0{minute}:00Z", value=1500.0 + minute)
                for minute in range(3)]
    result = ingest_readings.sync(client=client, body=ReadingRows(readings=readings))
    assert isinstance(result, IngestResult), result
    assert result.accepted == 3
    print(f"ingest: {result.accepted} accepted")


def series(client: AuthenticatedClient) -> None:
    answer = get_series.sync(client=client, sensor_id=[SENSOR], channel=Channel.POWER,
                             from_=FROM, to=TO)
    assert isinstance(answer, SeriesResult), answer
    values = answer.series[0].value
    assert {1500.0, 1501.0, 1502.0} <= set(values)
    print(f"series: {len(values)} points")


def export_csv(client: AuthenticatedClient) -> None:
    file = export_readings.sync(client=client, sensor_id=[SENSOR], from_=FROM, to=TO,
                                format_=ExportFormat.CSV)
    assert isinstance(file, File), file
    text = file.payload.read().decode()
    assert text.splitlines()[0] == "sensor_id,channel,ts,value"
    assert f"{SENSOR},power,2026-03-02T10:01:00" in text
    print(f"export: {len(text.splitlines()) - 1} rows")


def refusals(client: AuthenticatedClient) -> None:
    missing = get_asset.sync(COMMUNITY, "no-such-asset", client=client)
    assert isinstance(missing, Problem), missing
    assert missing.status == 404 and missing.code == "asset_not_found"
    bad = ReadingRows(readings=[Reading(sensor_id="no-such-sensor", channel=Channel.POWER,
                                        ts="2026-03-02T10:00:00Z", value=1.0)])
    refused = ingest_readings.sync(client=client, body=bad)
    assert isinstance(refused, ReadingsRefused), refused
    assert refused.refused == 1
    assert refused.errors[0].index == 0
    assert refused.errors[0].code is ReadingRefusalCode.UNKNOWN_SENSOR
    # A registry route answers as the rec-registry does: 422, each failure located.
    overlong = get_asset.sync(COMMUNITY, "k" * 200, client=client)
    assert isinstance(overlong, InvalidRequest), overlong
    assert overlong.code == "invalid_request"
    assert [list(failure.loc) for failure in overlong.detail] == [["path", "asset_key"]]
    print(f"refusals: 404 {missing.code}, 422 {refused.code} ({refused.errors[0].code.value}),"
          f" 422 {overlong.code} at {'/'.join(map(str, overlong.detail[0].loc))}")


def main(base_url: str, email: str, password: str, bundle: str) -> None:
    with log_in(base_url, email, password) as client:
        import_bundle(client, Path(bundle))
        every_member_key(client)
        one_asset(client)
        ingest(client)
        series(client)
        export_csv(client)
        refusals(client)
    print("ok")


if __name__ == "__main__":
    main(*sys.argv[1:5])
