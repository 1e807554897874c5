"""`ais backtest` and `ais demo`: the trading loop on bundled or given candles."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from adapters.keys import init_keys, load_keyring
from adapters.persistence import eventsourcing_env, sole_writer
from adapters.settings import PROJECT_ROOT, Settings
from domain.values import to_decimal
from interfaces.backtest_run import BacktestOutcome, BacktestRequest, data_files, run
from interfaces.console import progress_bar
from interfaces.read_side import ReadSide, read_side
from projections.digest import combined, digests

console = Console()
BUNDLED = PROJECT_ROOT / "data"
BUNDLED_CONFIG = PROJECT_ROOT / "config" / "btc-quoted"


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date or time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ensure_keys(settings: Settings) -> None:
    """The demo may make keys; everything else fails closed without them."""
    if settings.risk_hmac_keys is None and not load_keyring(settings).keys:
        for path in init_keys(settings.keys_file.parent):
            console.print(f"created {path}")


def _run_with_progress(
    request: BacktestRequest, settings: Settings, env: dict[str, str]
) -> BacktestOutcome:
    with progress_bar() as bar:
        task = bar.add_task("backtest", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run(request, settings, env, progress)


def _report(
    settings: Settings,
    outcome: BacktestOutcome,
    report_dir: Path,
    data: str,
    seed: int,
    show: Callable[[ReadSide], None] | None = None,
) -> None:
    # Imported here: matplotlib is heavy, and every other `ais` command starts faster.
    from adapters.report import performance_inputs, summary_table, write_report
    from application.performance import summarize

    with read_side(settings) as side, progress_bar() as bar:
        task = bar.add_task("projecting", total=None)
        side.projector().run_once(lambda done, head: bar.update(task, completed=done, total=head))
        bar.stop()
        inputs = performance_inputs(side.store, str(outcome.session_id))
        if show is not None:
            show(side)
        read_digest = combined(digests(side.store, side.projections))
    summary = summarize(inputs)
    console.print(summary_table(summary, title=f"Session {outcome.session_id}"))
    files = write_report(
        report_dir, summary, inputs, data=data, seed=seed, session=str(outcome.session_id)
    )
    console.print(f"{outcome.candles} candles over {outcome.bars} bar closes")
    console.print(f"report: {files.index}")
    console.print(f"event-log digest {outcome.log_digest}")
    console.print(f"read-model digest {read_digest}")


def backtest(
    data: Annotated[list[Path], typer.Option("--data", help="CSV file or folder (repeat)")],
    start: Annotated[str | None, typer.Option(help="ISO time of the first bar close")] = None,
    end: Annotated[str | None, typer.Option(help="ISO time of the last bar close")] = None,
    report: Annotated[Path | None, typer.Option(help="report folder")] = None,
    seed: Annotated[int, typer.Option(help="id seed: same data + seed = same log")] = 7,
    capital: Annotated[str, typer.Option(help="starting capital in the quote currency")] = "10",
    config_dir: Annotated[Path, typer.Option(help="risk.toml + instruments.toml")] = BUNDLED_CONFIG,
) -> None:
    """Backtest the trading loop on candles, in a store of its own, and write a report."""
    settings = Settings()
    data_files(data)  # bad input is reported before anything starts
    amount = to_decimal(capital, "capital")
    if amount <= 0:
        raise ValueError(f"--capital must be positive, got {capital}")
    request = BacktestRequest(data, config_dir, amount, seed, _when(start), _when(end))
    ensure_keys(settings)
    runs = settings.home / "backtests"
    run_dir = runs / f"seed{seed}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    run_settings = settings.model_copy(
        update={"home": run_dir, "database_url": None, "risk_hmac_keys_file": settings.keys_file}
    )
    store = sole_writer(eventsourcing_env(None, run_dir))  # the run's own store
    outcome = _run_with_progress(request, run_settings, store)
    _report(
        run_settings, outcome, report or run_dir / "report", ", ".join(str(p) for p in data), seed
    )


def demo(
    end: Annotated[str | None, typer.Option(help="stop early at this ISO time")] = None,
) -> None:
    """The main job: a paper session over the bundled January 2018 candles, reported."""
    settings = Settings()
    ensure_keys(settings)
    if settings.database_url:
        raise ValueError("the demo runs on the SQLite store: unset AIS_DATABASE_URL")
    _archive_previous(settings.home)
    files = sorted(BUNDLED.glob("*BTC_5m.csv"))
    console.print(
        f"paper session over {len(files)} BTC-quoted pairs, January 2018 "
        "(5-minute candles, data/PROVENANCE.md)"
    )
    request = BacktestRequest(files, BUNDLED_CONFIG, Decimal(10), seed=7, end=_when(end))
    outcome = _run_with_progress(request, settings, eventsourcing_env(None, settings.home))
    _report(
        settings,
        outcome,
        settings.home / "reports" / str(outcome.session_id),
        "data/*BTC_5m.csv (10 pairs, 2018-01-10 to 2018-01-30)",
        7,
        show=_show_books,
    )
    _seal_export_verify(settings, outcome.session_id)


def _seal_export_verify(settings: Settings, session_id: UUID) -> None:
    """Seal the log, export it with a signed manifest and verify the export offline."""
    from adapters.audit_export import export_log
    from adapters.audit_store import AuditSettings, AuditStore, RawLog, Sealer, load_signing_key
    from adapters.audit_verify import verify_export
    from adapters.clock import system_clock
    from adapters.keys import load_keyring
    from adapters.read_store import engines

    audit = AuditSettings(**settings.model_dump())
    key = load_signing_key(audit.signing_key_path)
    engine, schema = engines(settings.database_url, settings.home)
    store = AuditStore(engine, schema)
    log = RawLog(eventsourcing_env(settings.database_url, settings.home))
    out = settings.home / "exports" / str(session_id)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        Sealer(log, store, key, system_clock).checkpoint_now()
        export_log(log, store, out, key=key, clock=system_clock)
    finally:
        log.close()
        store.close()
    report = verify_export(out, public_key=audit.public_key_path, keys=load_keyring(settings))
    console.print(
        f"audit: exported {report.count} events to {out}; verified offline "
        f"(chain, Merkle root {report.merkle_root[:16]}…, signature, approvals)"
    )


def _archive_previous(home: Path) -> None:
    """Each demo starts from an empty log; the previous one is kept, not overwritten."""
    db = home / "ais.sqlite"
    if not db.exists():
        return
    archive = home / "archive" / f"ais-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    archive.mkdir(parents=True)
    for suffix in ("", "-wal", "-shm"):
        part = home / f"ais.sqlite{suffix}"
        if part.exists():
            shutil.move(part, archive / part.name)
    console.print(f"previous store moved to {archive}")


def _show_books(side: ReadSide) -> None:
    rows = {
        name: [r for p in side.projections for t, r in side.store.dump(p) if t == name]
        for name in ("portfolio", "exposure", "orders", "risk_decisions")
    }
    [summary] = rows["portfolio"]
    console.print(
        f"NAV {Decimal(summary['nav']):.8f} BTC, high-water mark "
        f"{Decimal(summary['high_water_mark']):.8f}, drawdown {Decimal(summary['drawdown']):.2%}, "
        f"max drawdown {Decimal(summary['max_drawdown']):.2%}"
    )
    table = Table(title="Exposure (read model)")
    for column in ("instrument", "quantity", "notional BTC", "weight"):
        table.add_column(column, justify="right")
    for row in rows["exposure"]:
        if Decimal(row["quantity"]) != 0:
            table.add_row(
                row["instrument"],
                row["quantity"],
                f"{Decimal(row['notional']):.8f}",
                f"{Decimal(row['weight']):.2%}",
            )
    console.print(table)
    statuses: dict[str, int] = {}
    for order in rows["orders"]:
        statuses[order["status"]] = statuses.get(order["status"], 0) + 1
    console.print("orders: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    for decision in rows["risk_decisions"]:
        if decision["decision"] in ("KILL_SWITCH_ENGAGED", "REDUCING"):
            console.print(f"{decision['at']}: {decision['decision']} — {decision['reason']}")
