"""A backtest's store skips the per-commit fsync and fast-forward query; a live one does not."""

from __future__ import annotations

from pathlib import Path

from eventsourcing.application import Application

from adapters.persistence import eventsourcing_env, sole_writer

FULL, NORMAL = 2, 1


def synchronous_of(env: dict[str, str]) -> tuple[int, bool]:
    """The commit durability of the app's SQLite connections, and whether loads fast-forward."""
    app: Application[object] = Application(env=env)  # type: ignore[type-var]
    try:
        with app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute("PRAGMA synchronous")
            level = int(cursor.fetchone()[0])
        return level, app.repository.fastforward
    finally:
        app.close()


def test_trading_store_commits_durably_and_fast_forwards(tmp_path: Path) -> None:
    assert synchronous_of(eventsourcing_env(None, tmp_path)) == (FULL, True)


def test_backtest_store_skips_the_fsync_and_the_fast_forward(tmp_path: Path) -> None:
    assert synchronous_of(sole_writer(eventsourcing_env(None, tmp_path))) == (NORMAL, False)


def test_sole_writer_keeps_postgres_persistence_as_it_is(tmp_path: Path) -> None:
    env = eventsourcing_env("postgresql://postgres@127.0.0.1:5432/test", tmp_path)
    relaxed = sole_writer(env)
    assert relaxed["PERSISTENCE_MODULE"] == env["PERSISTENCE_MODULE"]
    assert relaxed["AGGREGATE_CACHE_FASTFORWARD"] == "n"
