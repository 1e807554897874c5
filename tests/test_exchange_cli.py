"""`ais reconcile` as an operator runs it: a real subprocess against the fake Binance."""

from __future__ import annotations

import shutil
import socket
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from adapters.settings import Settings
from domain.commands import StartSession
from domain.values import Mode
from interfaces.bootstrap import build_app
from tests.conftest import SECRET
from tests.fake_exchange import API_KEY, running
from tests.fake_exchange import SECRET as VENUE_SECRET
from tests.fake_exchange.harness import CONFIG
from tests.test_cli import ais

KEYS = f"k1:{SECRET}"


def quick_config(tmp_path: Path) -> Path:
    """The shipped config, with a venue timeout and limiter fit for a local test server."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    exchange = target / "exchange.toml"
    text = exchange.read_text().replace("timeout_ms = 10000", "timeout_ms = 1000")
    text = text.replace("# ccxt_rate_limit_ms = 50", "ccxt_rate_limit_ms = 1")
    exchange.write_text(
        text.replace('backoff_base_seconds = "0.2"', 'backoff_base_seconds = "0.01"')
    )
    return target


def fund(home: Path, config: Path) -> None:
    app = build_app(Settings(home=home, config_dir=config, risk_hmac_keys=SecretStr(KEYS)))
    try:
        app.execute(
            StartSession(
                session_id=app.ids(),
                mode=Mode.LIVE,
                starting_capital=Decimal(100000),
                config_digest="test",
            )
        )
    finally:
        app.close()


def test_reconcile_prints_the_table_and_exits_2_on_a_break(tmp_path: Path) -> None:
    config = quick_config(tmp_path)
    fund(tmp_path, config)
    with running() as fake:
        env = {
            "AIS_CONFIG_DIR": str(config),
            "AIS_RISK_HMAC_KEYS": KEYS,
            "AIS_EXCHANGE_API_KEY": API_KEY,
            "AIS_EXCHANGE_API_SECRET": VENUE_SECRET,
            "AIS_EXCHANGE_BASE_URL": fake.base_url,
        }
        matched = ais("reconcile", "--startup", home=tmp_path, **env)
        assert matched.returncode == 0, matched.stderr
        assert matched.stdout.strip().splitlines()[-1] == "status MATCHED"
        assert "USDT" in matched.stdout and "100000" in matched.stdout

        fake.drift("USDT", "-250")
        broken = ais("reconcile", home=tmp_path, **env)
        assert broken.returncode == 2, broken.stderr
        assert "BREAK" in broken.stdout and "-250" in broken.stdout
        assert "kill switch engaged" in broken.stdout
        assert broken.stdout.strip().splitlines()[-1] == "status BREAK"
        app = build_app(Settings(home=tmp_path, config_dir=config, risk_hmac_keys=SecretStr(KEYS)))
        try:
            desk = app.desk()
            assert desk.kill_state == "HALTED"
            assert (desk.kill_reason or "").startswith("reconciliation BREAK at binance")
        finally:
            app.close()

        replay = ais("replay", "--projection", "reconciliation", "--verify", home=tmp_path, **env)
        assert replay.returncode == 0, replay.stderr
        assert replay.stdout.strip().splitlines()[-1].startswith("digest ")


def test_reconcile_errors_are_one_line(tmp_path: Path) -> None:
    config = quick_config(tmp_path)
    base = {"AIS_CONFIG_DIR": str(config), "AIS_RISK_HMAC_KEYS": KEYS}
    missing = ais("reconcile", home=tmp_path, **base)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "error: no exchange credentials: set AIS_EXCHANGE_API_KEY and AIS_EXCHANGE_API_SECRET "
        "(or AIS_EXCHANGE_API_SECRET_FILE)"
    ]
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed_port = free.getsockname()[1]
    down = ais(
        "reconcile",
        home=tmp_path,
        AIS_EXCHANGE_API_KEY=API_KEY,
        AIS_EXCHANGE_API_SECRET=VENUE_SECRET,
        AIS_EXCHANGE_BASE_URL=f"http://127.0.0.1:{closed_port}",
        **base,
    )
    assert down.returncode == 1
    [line] = down.stderr.strip().splitlines()
    assert line.startswith("error: exchange unavailable: binance load_markets: NetworkError")
