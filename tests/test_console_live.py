"""What the console adds to the API, in process on a real SQLite store: its page and files,
the kill-switch state, a sampled NAV history, the lots download, and the one position
watcher per process behind `/v1/stream`."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from interfaces.http.live import PositionWatcher, Snapshot
from tests.conftest import AppFactory, ReadModels, start_session
from tests.http_helpers import NAMES, Api, fill, no_floats, place, running_api

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def api(make_app: AppFactory, tmp_path: Path, read_models: ReadModels) -> Iterator[Api]:
    with running_api(make_app(), read_models, tmp_path / "api") as running:
        yield running


def marks(api: Api, count: int) -> int:
    """A session holding BTC, then `count` marks of rising price; projected; the head."""
    app = api.trading
    clock: Any = app.clock
    session_id = start_session(app)
    order_id = place(app, session_id, quantity="0.04", price="50000")
    fill(app, order_id, "0.04", "50000", "2")
    for n in range(count):
        clock.advance(60)
        app.observe_mark("BTC-USDT", Decimal(50000 + 10 * n))
    return api.project()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_page_and_files_are_open_and_served_locally(api: Api) -> None:
    page = api.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="/console/app.js"' in page.text and "https://" not in page.text  # no CDN
    script = api.client.get("/console/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    tag = script.headers["etag"]
    assert api.client.get("/console/app.js", headers={"If-None-Match": tag}).status_code == 304
    assert api.client.get("/console/console.css").status_code == 200
    assert api.client.get("/console/nothing.js").status_code == 404


@pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)
def test_kill_switch_state_follows_the_decisions(api: Api) -> None:
    start_session(api.trading)
    api.project()
    assert api.get("/v1/risk/kill-switch").json()["kill_state"] == "ACTIVE"
    engaged = api.post("/v1/kill-switch", {"reason": "drill"})
    assert engaged.status_code == 200, engaged.text
    at = engaged.json()["position"]
    api.project()
    state = api.get("/v1/risk/kill-switch", params={"min_position": at}).json()
    assert state["kill_state"] == "HALTED" and state["actor"] == NAMES["operator"]
    assert state["reason"] == "drill" and state["changed_at_position"] == at
    api.post("/v1/kill-switch/reset", {"reason": "over"})
    api.project()
    assert api.get("/v1/risk/kill-switch").json()["kill_state"] == "ACTIVE"


@pytest.mark.parametrize("store_url", ["sqlite", "postgres"], indirect=True)
def test_nav_sample_spans_the_whole_history(api: Api) -> None:
    marks(api, 40)
    full = api.get("/v1/portfolio/history", params={"limit": 500}).json()["items"]
    sample = api.get("/v1/portfolio/history/sample", params={"points": 7}).json()
    no_floats(sample)
    items = sample["items"]
    assert 2 < len(items) <= 7
    assert items[0] == full[0] and items[-1] == full[-1]
    positions = [p["position"] for p in items]
    assert positions == sorted(set(positions)) and all(p in full for p in items)
    everything = api.get("/v1/portfolio/history/sample", params={"points": 2000}).json()
    assert everything["items"] == full
    assert api.get("/v1/portfolio/history/sample", params={"points": 1}).status_code == 422


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_lots_download_in_each_layout(api: Api) -> None:
    app = api.trading
    session_id = start_session(app)
    bought = place(app, session_id, quantity="0.04", price="50000")
    fill(app, bought, "0.04", "50000", "2")
    sold = place(app, session_id, side="SELL", quantity="0.04", price="51000")
    fill(app, sold, "0.04", "51000", "2")
    year = app.clock().year
    generic = api.get("/v1/reports/lots", params={"year": year})
    assert generic.status_code == 200 and generic.headers["content-type"].startswith("text/csv")
    assert f'ais-lots-{year}-generic.csv' in generic.headers["content-disposition"]
    [lot] = list(csv.DictReader(io.StringIO(generic.text)))
    assert Decimal(lot["gain"]) == Decimal("40") - Decimal("4")
    koinly = list(csv.DictReader(io.StringIO(
        api.get("/v1/reports/lots", params={"year": year, "format": "koinly"}).text
    )))  # fmt: skip
    assert [(r["Sent Currency"], r["Received Currency"]) for r in koinly] == [
        ("USDT", "BTC"), ("BTC", "USDT"),
    ]  # fmt: skip
    tracking = api.get("/v1/reports/lots", params={"format": "cointracking"}).text
    assert tracking.splitlines()[0].startswith("Type,Buy Amount,Buy Currency")
    bad = api.get("/v1/reports/lots", params={"format": "excel"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert api.get("/v1/reports/lots", role=None).status_code == 401


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_one_watcher_feeds_every_stream(api: Api) -> None:
    """Two listeners, one poll loop: both see each new position; idle, it stops."""
    head = marks(api, 2)
    watcher = PositionWatcher(api.services, fastest=0.01, slowest=0.05)

    async def scenario() -> tuple[list[Snapshot], list[Snapshot], int]:
        async with watcher.subscribe() as first, watcher.subscribe() as second:
            seen = [await asyncio.wait_for(first.get(), 5)]
            also = [await asyncio.wait_for(second.get(), 5)]
            api.trading.observe_mark("BTC-USDT", Decimal("52000"))  # head moves, not projected
            seen.append(await asyncio.wait_for(first.get(), 5))
            await asyncio.to_thread(api.project)
            seen.append(await asyncio.wait_for(first.get(), 5))
            also.append(await asyncio.wait_for(second.get(), 5))
            polls = watcher.polls
        await asyncio.sleep(0.2)  # nobody listens: the loop ends
        assert watcher.latest is None
        return seen, also, polls

    seen, also, polls = asyncio.run(scenario())
    assert seen[0] == also[0] == Snapshot(head, head)
    assert seen[1] == Snapshot(head, head + 1) and seen[1].lag == 1
    assert seen[2] == also[-1] == Snapshot(head + 1, head + 1)
    assert polls < 200  # one loop for both listeners, backing off while nothing changes
