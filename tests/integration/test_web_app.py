"""The web app and /api/v1 over a real database, in the utility's zone (Asia/Kathmandu, +05:45).

Hostile input must be answered with a 4xx, never a 500.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from conftest import count_rows
from meterhub.config import Settings
from meterhub.readings.model import Reading
from meterhub.store import schema
from meterhub.store.ingest_writes import IngestWriter, WriteBatch
from meterhub.web.app import create_app

pytestmark = pytest.mark.integration

# Local midnight 2026-11-02 in Kathmandu is 18:15 UTC on 2026-11-01.
DAY_START = datetime(2026, 11, 1, 18, 15, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def seed(engine: Engine) -> None:
    """M-1 online with a last reading, M-2 offline, M-3 never heard from; M-1 has two local days
    of 1 kWh intervals (2 x 96)."""
    with engine.begin() as conn:
        conn.execute(
            insert(schema.meters),
            [
                {"id": "M-1", "online": True, "created_at": RECEIVED},
                {"id": "M-2", "online": False, "created_at": RECEIVED},
                {"id": "M-3", "online": None, "created_at": RECEIVED},
            ],
        )
        conn.execute(
            insert(schema.intervals),
            [
                {
                    "meter_id": "M-1",
                    "start": DAY_START + QUARTER * n,
                    "seconds": 900,
                    "import_kwh": 1.0,
                    "export_kwh": 0.0,
                    "quality": "actual",
                    "computed_at": RECEIVED,
                }
                for n in range(2 * 96)
            ],
        )
    readings = [
        Reading("M-1", DAY_START - QUARTER, import_kwh=1233.0, power_w=400.0, voltage_v=229.0),
        # The last one: 18:15 UTC = 2026-11-02 00:00 in Kathmandu.
        Reading("M-1", DAY_START, import_kwh=1234.5678, power_w=512.4, voltage_v=231.26),
    ]
    IngestWriter(engine).write(WriteBatch(received_at=RECEIVED, readings=readings))


@pytest.fixture
def client(any_engine: Engine) -> TestClient:
    seed(any_engine)
    settings = Settings(
        database_url=any_engine.url.render_as_string(hide_password=False),
        timezone="Asia/Kathmandu",
    )
    return TestClient(create_app(settings, any_engine), raise_server_exceptions=False)


def usage_url(meter_id: str = "M-1", **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/meters/{meter_id}/usage" + (f"?{query}" if query else "")


def row_of(html: str, meter_id: str) -> str:
    match = re.search(rf"<tr>\s*<td>{meter_id}</td>(.*?)</tr>", html, re.S)
    assert match is not None, f"no table row for {meter_id}"
    return match.group(1)


# -- the page --------------------------------------------------------------------------------


def test_meter_page_lists_every_meter_with_its_state(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<strong id="meter-count">3</strong> meters' in html
    assert '<strong id="online-count">1</strong> online' in html
    assert '<span class="on">online</span>' in row_of(html, "M-1")
    assert '<span class="off">offline</span>' in row_of(html, "M-2")
    assert '<span class="unk">unknown</span>' in row_of(html, "M-3")


def test_meter_page_shows_the_last_reading_in_the_utility_zone(client: TestClient) -> None:
    html = client.get("/").text
    assert "Last reading (Asia/Kathmandu)" in html
    row = row_of(html, "M-1")
    assert "2026-11-02 00:00" in row  # 18:15 UTC + 05:45
    assert "1234.568" in row  # import kWh to 3 decimals
    assert ">512<" in row  # power W, no decimals
    assert "231.3" in row  # voltage, 1 decimal
    assert "—" in row_of(html, "M-3")  # no reading yet


def test_page_offset_skips_meters(client: TestClient) -> None:
    html = client.get("/?offset=2").text
    assert "<td>M-3</td>" in html
    assert "<td>M-1</td>" not in html


# -- /api/v1/meters --------------------------------------------------------------------------


def test_meters_api_lists_meters_with_online_state_and_last_reading(client: TestClient) -> None:
    response = client.get("/api/v1/meters")
    assert response.status_code == 200
    meters = response.json()
    assert [m["id"] for m in meters] == ["M-1", "M-2", "M-3"]
    by_id = {m["id"]: m for m in meters}
    assert [by_id[m]["online"] for m in ("M-1", "M-2", "M-3")] == [True, False, None]
    assert by_id["M-1"]["last_import_kwh"] == pytest.approx(1234.5678)
    assert datetime.fromisoformat(by_id["M-1"]["last_reading_ts"]) == DAY_START
    assert by_id["M-3"]["last_reading_ts"] is None


def test_meters_api_pages(client: TestClient) -> None:
    assert [m["id"] for m in client.get("/api/v1/meters?limit=1&offset=1").json()] == ["M-2"]


@pytest.mark.parametrize("query", ["limit=0", "limit=5001", "offset=-1", "limit=many"])
def test_meters_api_refuses_bad_paging(client: TestClient, query: str) -> None:
    assert client.get(f"/api/v1/meters?{query}").status_code == 422


# -- usage -----------------------------------------------------------------------------------


def test_usage_buckets_are_local_days(client: TestClient) -> None:
    response = client.get(
        usage_url(period="day", **{"from": "2026-11-02T00:00:00%2B05:45"}, to="2026-11-04T00:00Z")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["meter_id"] == "M-1"
    assert body["period"] == "day"
    assert body["timezone"] == "Asia/Kathmandu"
    assert [(b["start"], b["end"], b["import_kwh"], b["intervals"]) for b in body["buckets"]] == [
        ("2026-11-02T00:00:00+05:45", "2026-11-03T00:00:00+05:45", 96.0, 96),  # 24 h x 4 x 1 kWh
        ("2026-11-03T00:00:00+05:45", "2026-11-04T00:00:00+05:45", 96.0, 96),
    ]
    assert [b["estimated_intervals"] for b in body["buckets"]] == [0, 0]


def test_usage_hours_and_months(client: TestClient) -> None:
    # [18:15, 20:15) UTC = local 00:00 .. 02:00: two hours of 4 x 1 kWh.
    hours = client.get(
        usage_url(period="hour", **{"from": "2026-11-01T18:15Z"}, to="2026-11-01T20:15Z")
    ).json()["buckets"]
    assert [(b["start"], b["import_kwh"]) for b in hours] == [
        ("2026-11-02T00:00:00+05:45", 4.0),
        ("2026-11-02T01:00:00+05:45", 4.0),
    ]
    months = client.get(
        usage_url(period="month", **{"from": "2026-11-01T00:00Z"}, to="2026-12-01T00:00Z")
    ).json()["buckets"]
    assert [(b["start"], b["import_kwh"]) for b in months] == [
        ("2026-11-01T00:00:00+05:45", 192.0)  # both local days are in November: 2 x 96
    ]


def test_usage_from_defaults_to_31_days_before_to(client: TestClient) -> None:
    # to = 2026-12-02 18:15 UTC -> from = 2026-11-01 18:15 UTC: both local days are inside.
    body = client.get(usage_url(to="2026-12-02T18:15Z")).json()
    assert sum(b["intervals"] for b in body["buckets"]) == 192
    # to = 2026-12-02 18:30 UTC -> from = 18:30 UTC on Nov 1: the first interval (18:15) is out.
    body = client.get(usage_url(to="2026-12-02T18:30Z")).json()
    assert sum(b["intervals"] for b in body["buckets"]) == 191


def test_usage_of_a_meter_without_intervals_is_empty(client: TestClient) -> None:
    response = client.get(usage_url("M-3"))
    assert response.status_code == 200
    assert response.json()["buckets"] == []


def test_usage_of_an_unknown_meter_is_404(client: TestClient) -> None:
    response = client.get(usage_url("NO-SUCH-METER"))
    assert response.status_code == 404
    assert "not registered" in response.json()["detail"]


@pytest.mark.parametrize("meter_id", ["M.1", "M%201", "M:1", "M%C3%A91", "M*", "M%27"])
def test_usage_refuses_illegal_meter_id_characters(client: TestClient, meter_id: str) -> None:
    response = client.get(usage_url(meter_id))
    assert response.status_code == 422
    assert "meter id" in response.json()["detail"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-11-02T00:00Z", "2026-11-02T00:00Z"),  # from == to
        ("2026-11-03T00:00Z", "2026-11-02T00:00Z"),  # from > to
        ("2026-11-02T05:45:00%2B05:45", "2026-11-02T00:00Z"),  # the same instant in two zones
    ],
)
def test_usage_refuses_from_not_before_to(client: TestClient, start: str, end: str) -> None:
    response = client.get(usage_url(**{"from": start}, to=end))
    assert response.status_code == 422
    assert response.json()["detail"] == "from must be before to"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-11-02T00:00:00", "to": "2026-11-03T00:00Z"},
        {"from": "2026-11-02T00:00Z", "to": "2026-11-03T00:00:00"},
        {"to": "2026-11-03"},  # a bare date is a naive midnight
    ],
)
def test_usage_refuses_timestamps_without_an_offset(
    client: TestClient, params: dict[str, str]
) -> None:
    response = client.get(usage_url(**params))
    assert response.status_code == 422
    assert response.json()["detail"] == "timestamps need a UTC offset"


@pytest.mark.parametrize("period", ["year", "week", "", "DAY"])
def test_usage_refuses_unknown_periods(client: TestClient, period: str) -> None:
    assert client.get(usage_url(period=period)).status_code == 422


def test_usage_refuses_a_timestamp_that_is_not_one(client: TestClient) -> None:
    assert client.get(usage_url(**{"from": "yesterday"})).status_code == 422


# -- health ----------------------------------------------------------------------------------


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_and_counters_are_served(client: TestClient) -> None:
    assert client.get("/api/v1/openapi.json").status_code == 200
    counters = client.get("/api/v1/ingest/counters").json()
    # seed(): one batch of 2 readings, both accepted.
    assert {"outcome": "accepted", "reason": "reading", "count": 2} in counters


# -- hostile requests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/meters/" + "A" * 65 + "/usage",  # one over the 64-character limit
        "/api/v1/meters/" + "A" * 10_000 + "/usage",
        "/api/v1/meters/..%2F..%2Fetc%2Fpasswd/usage",
        "/api/v1/meters/%2E%2E/usage",
        "/api/v1/meters/../../../etc/passwd",
        "/api/v1/meters/M-1'%20OR%20'1'='1/usage",
        "/api/v1/meters/M-1;DROP%20TABLE%20meters/usage",
        "/api/v1/meters/M-1%00/usage",
        "/api/v1/meters/M-1%0A/usage",
        "/api/v1/meters/M-1/usage?from=2026-11-01T00:00Z'%20OR%201=1--",
        "/api/v1/meters/M-1/usage?period=day'%20OR%201=1",
        "/api/v1/meters/M-1/usage?from=" + "9" * 5000,
        "/api/v1/meters?limit=1;DROP%20TABLE%20meters",
        "/?offset=-1",
        "/%2e%2e/%2e%2e/etc/passwd",
    ],
)
def test_hostile_requests_get_a_4xx(client: TestClient, any_engine: Engine, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
    assert count_rows(any_engine, "meters") == 3  # nothing was dropped


@pytest.mark.parametrize(
    "params",
    [
        {"to": "9999-12-31T23:59:59-01:00"},  # 00:59:59 UTC in year 10000
        {"from": "0001-01-01T00:00:00%2B01:00", "to": "2026-01-01T00:00Z"},  # 23:00 UTC, year 0
        {"to": "0001-01-02T00:00Z"},  # default from = 31 days before year 1
    ],
)
def test_timestamps_at_the_edge_of_the_calendar_get_a_4xx(
    client: TestClient, params: dict[str, str]
) -> None:
    response = client.get(usage_url(**params))
    assert 400 <= response.status_code < 500, response.status_code


@pytest.mark.parametrize("path", ["/?offset=", "/api/v1/meters?offset="])
def test_an_enormous_offset_gets_a_4xx_or_an_empty_page(client: TestClient, path: str) -> None:
    response = client.get(path + "9" * 25)
    assert response.status_code < 500, response.status_code
