"""The `ais` CLI as a user runs it: a real subprocess, real files, one-line errors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.keys import load_keyring
from adapters.settings import ConfigError, Settings, load_catalog, load_limits

ROOT = Path(__file__).resolve().parents[1]


def ais(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AIS_")}
    environ.update({"AIS_HOME": str(home), "COLUMNS": "200", **env})
    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keys_init_writes_private_files_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = ais("keys", "init", home=tmp_path)
    assert result.returncode == 0, result.stderr
    keys = tmp_path / "keys"
    for name in ("hmac.key", "audit-ed25519.pem"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    ring = load_keyring(Settings(home=tmp_path))
    assert ring.active_key_id is not None and len(ring.keys) == 1
    before = (keys / "hmac.key").read_bytes()
    again = ais("keys", "init", home=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip().startswith("error: ") and "refusing to overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert (keys / "hmac.key").read_bytes() == before


def test_demo_trades_reports_and_its_read_models_replay_identically(tmp_path: Path) -> None:
    """A short demo (three days of the bundled data): summary, report, replayable models."""
    result = ais("demo", "--end", "2018-01-13T00:00:00", home=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "Total return",
        "Max drawdown",
        "Sharpe",
        "Sortino",
        "Calmar",
        "VaR 95 %",
        "CVaR 95 %",
        "Turnover",
        "Fees",
        "Orders",
        "Fills",
        "NAV ",
    ):
        assert expected in out
    report = Path(out.split("report: ", 1)[1].split()[0]).parent
    for name in ("index.html", "equity.png", "drawdown.png", "summary.json"):
        assert (report / name).stat().st_size > 0
    assert report.parent == tmp_path / "reports"
    assert "verified offline" in out and (tmp_path / "exports").is_dir()
    digest = out.split("read-model digest", 1)[1].split()[0]
    replayed = ais("replay", "--verify", home=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip().splitlines()[-1] == f"digest {digest}"
    again = ais("demo", "--end", "2018-01-12T00:00:00", home=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "previous store moved to" in again.stdout


def test_backtest_writes_its_own_store_and_report(tmp_path: Path) -> None:
    data = ROOT / "data"
    result = ais(
        "backtest",
        "--data",
        str(data / "ETHBTC_5m.csv"),
        "--data",
        str(data / "XMRBTC_5m.csv"),
        "--end",
        "2018-01-13",
        "--report",
        str(tmp_path / "r"),
        "--seed",
        "3",
        home=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / "summary.json").exists()
    assert not (tmp_path / "ais.sqlite").exists()  # the main store is untouched
    bad = ais("backtest", "--data", str(tmp_path / "nope.csv"), home=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: no such file or directory"


def test_kill_switch_engage_and_reset_from_the_cli(tmp_path: Path) -> None:
    assert ais("keys", "init", home=tmp_path).returncode == 0
    engaged = ais("kill", "--reason", "drill", "--by", "alice", home=tmp_path)
    assert engaged.returncode == 0 and "HALTED" in engaged.stdout
    empty = ais("kill", "--reset", "--reason", " ", home=tmp_path)
    assert empty.returncode == 1 and empty.stderr.startswith("error: ")
    reset = ais("kill", "--reset", "--reason", "drill over", home=tmp_path)
    assert reset.returncode == 0 and "ACTIVE" in reset.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AIS_RISK_HMAC_KEYS": "k1:short"}, "at least 32 are required"),
        ({"AIS_RISK_HMAC_KEYS": "no-colon-here"}, "malformed HMAC key"),
        ({"AIS_DATABASE_URL": "mysql://x/y"}, "unsupported scheme"),
    ],
)
def test_bad_settings_give_one_error_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = ais("status", home=tmp_path, **env)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_corrupt_key_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hmac.key").write_bytes(b"\xff\xfe garbage")
    result = ais("status", home=tmp_path)
    assert result.returncode == 1 and "hmac.key" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nmax_drawdown = 0.05\n", "limits"),
        ('[limits]\nmax_drawdown = "abc"\n', "limits"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_risk_file_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_limits(path)
    assert str(path) in str(error.value)


def test_float_limits_are_refused(tmp_path: Path) -> None:
    text = (ROOT / "config" / "risk.toml").read_text().replace('"0.05"', "0.05", 1)
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="write decimals as strings"):
        load_limits(path)


def test_shipped_config_loads() -> None:
    limits = load_limits(ROOT / "config" / "risk.toml")
    assert limits.max_drawdown <= Decimal("0.05") and limits.daily_loss <= Decimal("0.03")
    assert limits.max_position_weight <= Decimal("0.10") and limits.max_gross_leverage <= Decimal(
        "1.5"
    )
    catalog = load_catalog(ROOT / "config" / "instruments.toml")
    assert set(limits.mandate) <= set(catalog.symbols())
