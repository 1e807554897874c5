"""`ais config check`: the effective configuration with secrets masked, or one error line
naming the file (or variable) and the key."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from adapters.settings import load_limits
from tests.test_http_cli import ais, invoke, one_line_error

ROOT = Path(__file__).resolve().parents[1]
HMAC = "k1:" + "h" * 40
SECRETS = {
    "AIS_RISK_HMAC_KEYS": HMAC,
    "AIS_EXCHANGE_API_KEY": "exchange-api-key-0123456789",
    "AIS_EXCHANGE_API_SECRET": "exchange-api-secret-9876543210",
    "AIS_WEBHOOK_SECRET": "w" * 40,
    "AIS_ALERT_WEBHOOK_URL": "https://hooks.example.invalid/T000/B000/alert-url-secret",
    "AIS_ALERT_WEBHOOK_TOKEN": "alert-token-abcdefgh",
    "AIS_DATABASE_URL": "postgresql://ais:db-password-42@127.0.0.1:5432/ais",
}
HIDDEN = [*SECRETS.values(), "h" * 40, "db-password-42"]


def config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    target.mkdir()
    for name in ("risk", "instruments", "exchange", "reconciliation"):
        shutil.copy(ROOT / "config" / f"{name}.toml", target)
    return target


def test_prints_the_effective_config_as_json_with_every_secret_masked(tmp_path: Path) -> None:
    config = config_copy(tmp_path)
    result = ais("config", "check", "--json", "--config-dir", str(config), home=tmp_path, **SECRETS)
    assert result.returncode == 0, result.stderr
    for secret in HIDDEN:
        assert secret not in result.stdout + result.stderr
    shown = json.loads(result.stdout)
    limits = load_limits(config / "risk.toml")
    assert shown["risk"]["max_drawdown"] == str(limits.max_drawdown)
    assert shown["risk"]["mandate"] == {k: str(v) for k, v in limits.mandate.items()}
    assert shown["approval_keys"] == {"key_ids": ["k1"], "active": "k1"}
    assert shown["settings"]["database_url"] == "postgresql://ais:***@127.0.0.1:5432/ais"
    assert shown["settings"]["risk_hmac_keys"] == "***"
    assert (shown["exchange"]["api_key"], shown["exchange"]["secret"]) == ("***", "***")
    assert shown["exchange"]["venue"] == "binance"
    assert shown["alerts"]["webhook_url"] == shown["alerts"]["webhook_token"] == "***"
    assert shown["signals_webhook"]["secret"] == "***"
    assert shown["reconciliation"]["tolerances"]["BTC"] == {
        "matched": "0.00000001",
        "drift": "0.0001",
    }
    assert sorted(shown["instruments"]) == ["ADA-USDT", "BTC-USDT", "ETH-USDT"]


def test_table_output_and_optional_venue_files(tmp_path: Path) -> None:
    config = config_copy(tmp_path)
    (config / "exchange.toml").unlink()
    (config / "reconciliation.toml").unlink()
    result = invoke("config", "check", "--config-dir", str(config), home=tmp_path, **SECRETS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("config ok")
    assert re.search(r"risk\s+.\s+max_order_notional\s+.\s+25000", result.stdout)
    assert "absent (needed by shadow/live)" in result.stdout
    for secret in HIDDEN:
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("file", "pattern", "replacement", "names"),
    [
        ("risk", r'max_drawdown = "[^"]*"', 'max_drawdown = "a lot"', "limits.max_drawdown"),
        ("risk", r"\norder_rate_limit = \d+", "\n", "limits.order_rate_limit: Field required"),
        ("instruments", r'\ntick_size = "0.01"', "", "BTC-USDT.tick_size: Field required"),
        ("exchange", r"retries = 3", 'retries = "many"', "exchange.retries"),
        (
            "reconciliation",
            r"\[reconciliation.default\]",
            "[reconciliation.x]",
            "default: Field required",
        ),
        ("risk", r"\[limits\]", "[limits", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, file: str, pattern: str, replacement: str, names: str
) -> None:
    config = config_copy(tmp_path)
    path = config / f"{file}.toml"
    text = path.read_text()
    broken = re.sub(pattern, replacement, text, count=1)
    assert broken != text
    path.write_text(broken)
    result = invoke("config", "check", "--config-dir", str(config), home=tmp_path)
    one_line_error(result, f"{path}: ")
    assert names in result.stderr


def test_a_bad_environment_value_names_its_variable(tmp_path: Path) -> None:
    result = invoke("config", "check", home=tmp_path, AIS_LOG_LEVEL="loud")
    one_line_error(result, "environment: AIS_LOG_LEVEL:")
    short = invoke("config", "check", home=tmp_path, AIS_RISK_HMAC_KEYS="k1:short")
    one_line_error(short, "HMAC key 'k1'")
    assert "k1:short" not in short.stderr
