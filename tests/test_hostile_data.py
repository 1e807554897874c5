"""Hostile data below the HTTP and CLI surfaces: candle files, config files and the
domain's own command constructors. Bad values are refused with one clear message that
names the file and line (candles), the file and key (config) or the field (commands);
nothing refused reaches the event log.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters.event_log import EventLog, log_digest
from adapters.exchange.config import load_exchange
from adapters.market_data_csv import CandleDataError, CsvMarketData, read_candles
from adapters.persistence import eventsourcing_env
from adapters.settings import ConfigError, load_catalog, load_limits
from application.errors import RiskRejected
from application.trading import TradingApp
from domain.commands import (
    ApplyFill,
    CancelOrder,
    HaltSession,
    PlaceOrder,
    RecordFill,
    StartSession,
)
from domain.errors import DomainError, InvalidCommand
from domain.values import Mode, OrderType, Side
from interfaces.cli import app as cli_app
from tests.conftest import CONFIG, START, start_session

HEADER = "timestamp_ms,open,high,low,close,volume\n"
BAR = ",1,2,0.5,1.5,1\n"
HOSTILE_NUMBERS = ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E+18"]


# --- candles ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (HEADER + "60000,-0,2,0.5,1.5,1\n120000" + BAR, 2, "prices must be positive"),
        (HEADER + "60000,0,0,0,0,1\n120000" + BAR, 2, "prices must be positive"),
        (HEADER + "60000" + BAR + "120000,1,1e400,0.5,1.5,1\n", 3, "out of range"),
        (HEADER + "60000" + BAR + "120000,1,2,0.5,1.5,Infinity\n", 3, "not finite"),
        (HEADER + "60000" + BAR + "60000" + BAR, 3, "duplicate timestamp"),
        (HEADER + "60000" + BAR + "120000" + BAR + "120000" + BAR, 4, "duplicate timestamp"),
        (HEADER + "60000" + BAR + "120000,1,2\x00,0.5,1.5,1\n", 3, "high is not a number"),
        (HEADER + "60000" + BAR + "120000,1,\u202e2,0.5,1.5,1\n", 3, "high is not a number"),
        (HEADER + "60000" + BAR + "120000,1,2,0.5,1.5," + "9" * 200_000 + "\n", 3, "limit"),
        (HEADER + "60000" + BAR + "99999999999999999999999" + BAR, 3, "bad timestamp"),
        (HEADER + "60000" + BAR + "'; DROP TABLE x; --" + BAR, 3, "bad timestamp"),
    ],
)
def test_bad_candles_name_file_and_line(
    tmp_path: Path, content: str, line: int, message: str
) -> None:
    path = tmp_path / "XBTC_1m.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CandleDataError, match=message) as error:
        read_candles(path, "X-BTC")
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert "\n" not in str(error.value)


def test_binary_junk_and_empty_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "JUNKBTC_1m.csv"
    junk.write_bytes(HEADER.encode() + b"60000,1,2,0.5,1.5,1\n120000,\xff\xfe,2,0.5,1.5,1\n")
    with pytest.raises(CandleDataError, match="open is not a number") as error:
        read_candles(junk, "JUNK-BTC")
    assert str(error.value).startswith(f"{junk}:3: ")
    for content, message in [(b"", "header must be"), (HEADER.encode(), "at least two")]:
        junk.write_bytes(content)
        with pytest.raises(CandleDataError, match=message):
            read_candles(junk, "JUNK-BTC")


def test_gaps_are_explicit_and_never_filled(tmp_path: Path) -> None:
    """Missing bars are reported as gaps; the market shows no invented bar inside one."""
    path = tmp_path / "GAPBTC_1m.csv"
    rows = [0, 1, 2, 6, 7, 20]  # minutes: 3 bars missing after 2, 12 after 7
    path.write_text(HEADER + "".join(f"{m * 60_000}{BAR}" for m in rows))
    series = read_candles(path, "GAP-BTC")
    assert series.timeframe == timedelta(minutes=1)
    first = series.candles[0].opens_at
    assert series.gaps == (
        (first + timedelta(minutes=3), 3),
        (first + timedelta(minutes=8), 12),
    )
    market = CsvMarketData([series])
    inside = first + timedelta(minutes=15)
    assert market.candles("GAP-BTC", inside, 100)[-1].opens_at == first + timedelta(minutes=7)
    assert len(market.clock_ticks()) == len(rows)


def test_backtest_on_a_bad_candle_file_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "XBTC_5m.csv"
    path.write_text(HEADER + "300000" + BAR + "300000" + BAR)
    env = {"AIS_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(cli_app, ["backtest", "--data", str(path)], env=env)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {path}:3: duplicate timestamp 300000"]
    assert not list((tmp_path / "home").glob("**/ais.sqlite"))


# --- config files ------------------------------------------------------------------------------
def _edit(section: str, key: str, value: str | None) -> Callable[[str], str]:
    """Replace (or with None, remove) `key = ...` inside `[section]` of a TOML text."""

    def edit(text: str) -> str:
        out, inside = [], False
        for line in text.splitlines():
            if line.startswith("["):
                inside = line.strip() == f"[{section}]"
            if inside and line.split("=")[0].strip() == key:
                if value is not None:
                    out.append(f"{key} = {value}")
                continue
            out.append(line)
        return "\n".join(out) + "\n"

    return edit


CONFIG_CASES: list[tuple[str, Callable[[str], str], str, str]] = [
    ("risk.toml", _edit("limits", "max_drawdown", None), "limits.max_drawdown", "required"),
    ("risk.toml", _edit("limits", "max_drawdown", "true"), "limits.max_drawdown", "Decimal"),
    ("risk.toml", _edit("limits", "max_drawdown", '"NaN"'), "limits.max_drawdown", "finite"),
    ("risk.toml", _edit("limits", "daily_loss", '"Infinity"'), "limits.daily_loss", "finite"),
    ("risk.toml", _edit("limits", "max_drawdown", '"-0"'), "limits.max_drawdown", "greater"),
    ("risk.toml", _edit("limits", "max_drawdown", "0.05"), "limits.max_drawdown", "strings"),
    ("risk.toml", _edit("limits", "max_order_notional", '"1e400"'), "max_order_notional",
     "out of range"),
    ("risk.toml", _edit("limits", "order_rate_limit", '"ten"'), "limits.order_rate_limit",
     "integer"),
    ("risk.toml", _edit("limits", "order_rate_limit", "[1, 2]"), "limits.order_rate_limit",
     "integer"),
    ("risk.toml", lambda t: t + "\n[limits2]\nx = 1\n", "limits2", "Extra"),
    ("risk.toml", lambda t: t.replace("[limits]", "[limitz]", 1), "limits", "required"),
    ("instruments.toml", _edit("instruments.BTC-USDT", "tick_size", '"NaN"'),
     "instruments.BTC-USDT.tick_size", "finite"),
    ("instruments.toml", _edit("instruments.BTC-USDT", "lot_size", None),
     "instruments.BTC-USDT.lot_size", "required"),
    ("instruments.toml", _edit("instruments.BTC-USDT", "base", "5"),
     "instruments.BTC-USDT.base", "string"),
    ("exchange.toml", _edit("exchange", "timeout_ms", '"soon"'), "exchange.timeout_ms",
     "integer"),
    ("exchange.toml", _edit("exchange", "backoff_cap_seconds", "5.5"),
     "exchange.backoff_cap_seconds", "strings"),
]


def _load(name: str, path: Path) -> Any:
    if name == "risk.toml":
        return load_limits(path)
    if name == "instruments.toml":
        return load_catalog(path)
    return load_exchange(path)


@pytest.mark.parametrize(("name", "edit", "key", "message"), CONFIG_CASES)
def test_bad_config_names_file_and_key(
    tmp_path: Path, name: str, edit: Callable[[str], str], key: str, message: str
) -> None:
    path = tmp_path / name
    original = (CONFIG / name).read_text()
    path.write_text(edit(original))
    assert path.read_text() != original  # the edit found its key
    with pytest.raises(ConfigError) as error:
        _load(name, path)
    text = str(error.value)
    assert text.startswith(f"{path}: ") and key in text and message in text, text
    assert "\n" not in text


def test_bad_config_on_the_cli_is_one_line_and_touches_no_store(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    for name in ("risk.toml", "instruments.toml"):
        (config / name).write_text((CONFIG / name).read_text())
    risk = config / "risk.toml"
    risk.write_text(_edit("limits", "max_drawdown", '"NaN"')(risk.read_text()))
    home = tmp_path / "home"
    env = {"AIS_HOME": str(home), "AIS_CONFIG_DIR": str(config)}
    for args in (["status"], ["kill", "--reason", "x"]):
        result = CliRunner().invoke(cli_app, args, env=env)
        assert result.exit_code == 1
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.stderr.strip().splitlines() == [
            f"error: {risk}: limits.max_drawdown: Input should be a finite number"
        ]
    assert not (home / "ais.sqlite").exists()


# --- domain commands -----------------------------------------------------------------------------
def _place(**overrides: Any) -> PlaceOrder:
    fields: dict[str, Any] = {
        "order_id": uuid.uuid4(),
        "session_id": uuid.uuid4(),
        "instrument": "BTC-USDT",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": "0.01",
        "limit_price": "50000",
    }
    return PlaceOrder(**{**fields, **overrides})


def _fill(cls: type[RecordFill] | type[ApplyFill], **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "order_id": uuid.uuid4(),
        "trade_id": "t-1",
        "quantity": "0.01",
        "price": "50000",
        "fee": "0.1",
        "filled_at": START,
    }
    if cls is ApplyFill:
        fields.update(account_id="acct", instrument="BTC-USDT", side=Side.BUY)
    return cls(**{**fields, **overrides})


@pytest.mark.parametrize("number", [*HOSTILE_NUMBERS, "-0", 1.5, float("nan"), True])
def test_command_constructors_refuse_non_finite_and_absurd_numbers(number: Any) -> None:
    builders: list[Callable[[], object]] = [
        lambda: _place(quantity=number),
        lambda: _place(limit_price=number),
        lambda: _fill(RecordFill, quantity=number),
        lambda: _fill(RecordFill, price=number),
        lambda: _fill(ApplyFill, price=number),
        lambda: StartSession(
            session_id=uuid.uuid4(), mode=Mode.PAPER, starting_capital=number, config_digest="x"
        ),
    ]
    for build in builders:
        with pytest.raises(InvalidCommand) as error:
            build()
        assert "\n" not in str(error.value)
    if number not in ("-0",):
        with pytest.raises(InvalidCommand):
            _fill(RecordFill, fee=number)
    else:  # a fee of negative zero is zero, stored without its sign
        assert str(_fill(RecordFill, fee=number).fee) == "0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty"),
        ("nul\x00", "control character"),
        ("\x1b[31mred", "control character"),
        ("\ud800", "lone surrogate"),
        ("x" * 10_000, "longer than"),
    ],
)
def test_command_constructors_refuse_unstorable_text(text: str, message: str) -> None:
    session_id = uuid.uuid4()
    for build in (
        lambda: HaltSession(session_id=session_id, reason=text),
        lambda: CancelOrder(order_id=session_id, reason=text),
        lambda: _place(instrument=text),
        lambda: _fill(RecordFill, trade_id=text),
    ):
        with pytest.raises(InvalidCommand, match=message):
            build()


@pytest.mark.parametrize("store_url", [None])
def test_the_app_refuses_hostile_values_and_keeps_the_log(app: TradingApp, tmp_path: Path) -> None:
    """Through TradingApp: refusals leave the log byte-for-byte as it was."""
    session_id = start_session(app)
    log = EventLog(eventsourcing_env(None, tmp_path / "home"))  # the store `app` writes
    head, digest = app.recorder.max_notification_id(), log_digest(log)
    for quantity in ("1E+18", "1E+30", "1E-400", "0.000000001"):
        with pytest.raises(InvalidCommand):
            app.execute(_place(session_id=session_id, quantity=quantity))
    with pytest.raises(InvalidCommand, match="unknown instrument"):
        app.execute(_place(session_id=session_id, instrument="BTC'; DROP TABLE x; --"))
    for price in ("1e400", "NaN", "-0"):
        with pytest.raises(InvalidCommand):
            app.observe_mark("BTC-USDT", Decimal(price))
    for reason in ("nul\x00", "\ud800", "x" * 600):
        with pytest.raises(InvalidCommand):
            app.engage_kill_switch(reason, by="ops")
        with pytest.raises(InvalidCommand):
            app.execute(HaltSession(session_id=session_id, reason=reason))
    assert app.recorder.max_notification_id() == head
    assert log_digest(log) == digest
    log.close()
    # SQL-looking text is data: stored verbatim.
    sql = "'); DELETE FROM stored_events; --"
    app.execute(HaltSession(session_id=session_id, reason=sql))
    assert app.session(session_id).reasons[-1] == sql
    with pytest.raises((RiskRejected, DomainError)):
        app.execute(_place(session_id=session_id))  # the halted session trades no more
