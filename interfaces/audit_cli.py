"""`ais audit ...`: seal the log, export it, verify an export offline or the live store.

Verification failures print ONE line, `position <N>: <what is wrong>` (or `manifest: ...`,
`seal: ...`, `proof: ...`), on stderr and exit 1; bad input prints `error: ...` and exits 1.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from adapters.audit_export import FORMATS, export_log
from adapters.audit_store import (
    AuditError,
    AuditSettings,
    AuditStore,
    RawLog,
    Sealer,
    load_public_key,
    load_signing_key,
    prove,
    verify_database,
)
from adapters.audit_verify import Failure, check_proof, verify_export
from adapters.clock import system_clock
from adapters.persistence import eventsourcing_env
from adapters.read_store import engines
from domain.approval import KeyRing
from interfaces.console import CLEAN_ERRORS, error_line, progress_bar
from projections.audit_seal import key_fingerprint

audit_app = typer.Typer(
    no_args_is_help=True, help="Audit seal, export and offline verification of the event log"
)
console = Console(soft_wrap=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(func: F) -> F:
    """A verification failure prints its own line; anything else as every command does."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Failure as exc:
            print(str(exc), file=sys.stderr)
            raise typer.Exit(1) from None
        except CLEAN_ERRORS as exc:
            print(f"error: {error_line(exc)}", file=sys.stderr)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def _database(settings: AuditSettings) -> Iterator[tuple[RawLog, AuditStore]]:
    engine, schema = engines(settings.database_url, settings.home)
    store = AuditStore(engine, schema)
    log = RawLog(eventsourcing_env(settings.database_url, settings.home))
    try:
        yield log, store
    finally:
        log.close()
        store.close()


@audit_app.command("seal")
@_one_line_errors
def seal(
    checkpoint: Annotated[
        bool, typer.Option("--checkpoint", help="also sign a checkpoint at the head now")
    ] = False,
    follow: Annotated[bool, typer.Option("--follow", help="keep sealing new events")] = False,
    every: Annotated[
        int | None,
        typer.Option(min=1, help="sign a checkpoint every N events (AIS_AUDIT_CHECKPOINT_EVERY)"),
    ] = None,
) -> None:
    """Seal the log: hash chain, Merkle tree, signed checkpoints (resumable)."""
    settings = AuditSettings()
    key = load_signing_key(settings.signing_key_path)
    with _database(settings) as (log, store):
        sealer = Sealer(
            log, store, key, system_clock, every=every or settings.audit_checkpoint_every
        )
        if follow:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                sealer.follow(stop)
            except KeyboardInterrupt:
                stop.set()
            return
        with progress_bar() as bar:
            task = bar.add_task("sealing", total=None)
            sealed = sealer.run_once(lambda p, h: bar.update(task, completed=p, total=h))
        made = sealer.checkpoint_now() if checkpoint else None
        state = store.state()
        console.print(f"sealed {sealed} new events; {state.tree_size} sealed in all")
        if made is not None:
            console.print(
                f"checkpoint: tree size {made.tree_size}, position {made.last_position}, "
                f"root {made.merkle_root}"
            )
        console.print(f"chain head {state.chain_head.hex()}", highlight=False)
        console.print(f"merkle root {state.frontier.root().hex()}", highlight=False)


@audit_app.command("export")
@_one_line_errors
def export(
    out: Annotated[
        Path, typer.Option("--out", help="directory to create (must be absent or empty)")
    ],
    fmt: Annotated[str, typer.Option("--format", help="ndjson, csv or parquet")] = "ndjson",
    first: Annotated[int | None, typer.Option("--from", help="first position")] = None,
    last: Annotated[int | None, typer.Option("--to", help="last position")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=0, max=64, help="processes rendering rows (default: by size and CPUs)"),
    ] = None,
) -> None:
    """Export the log with its hash chain and a signed manifest (streamed)."""
    if fmt not in FORMATS:
        raise AuditError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    settings = AuditSettings()
    key = load_signing_key(settings.signing_key_path)
    with _database(settings) as (log, store), progress_bar() as bar:
        task = bar.add_task("exporting", total=None)
        manifest = export_log(
            log,
            store,
            out,
            key=key,
            clock=system_clock,
            fmt=fmt,
            first=first,
            last=last,
            progress=lambda p, h: bar.update(task, completed=p, total=h),
            workers=workers,
        )
    console.print(
        f"exported {manifest['count']} events (positions {manifest['first_position']}.."
        f"{manifest['last_position']}) to {out / manifest['file']}",
        highlight=False,
    )
    console.print(f"merkle root {manifest['merkle_root']}", highlight=False)
    console.print(f"chain head {manifest['chain_head']}", highlight=False)
    console.print(
        f"{len(manifest['checkpoints'])} signed checkpoints matched and included; "
        f"signed by key {manifest['public_key_sha256']}",
        highlight=False,
    )


@audit_app.command("verify")
@_one_line_errors
def verify(
    directory: Annotated[Path | None, typer.Argument(help="an export directory")] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="Ed25519 public key (PEM) to trust")
    ] = None,
    hmac_keys: Annotated[
        str | None,
        typer.Option("--hmac-keys", help="'key_id:secret,...': also re-verify every approval"),
    ] = None,
    db: Annotated[
        bool, typer.Option("--db", help="check the live store against its signed checkpoints")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=0, max=64, help="processes checking lines (default: by size and CPUs)"),
    ] = None,
) -> None:
    """Verify an export offline (no database), or the live store with --db."""
    if db == (directory is not None):
        raise AuditError("give an export directory, or --db for the live store (not both)")
    if db:
        _verify_db(public_key)
        return
    assert directory is not None
    keys = KeyRing.parse(hmac_keys) if hmac_keys is not None else None
    if keys is not None and not keys.keys:
        raise AuditError("--hmac-keys holds no key")
    with progress_bar() as bar:
        task = bar.add_task("verifying", total=None)
        report = verify_export(
            directory,
            public_key=public_key,
            keys=keys,
            progress=lambda p, h: bar.update(task, completed=p, total=h),
            workers=workers,
        )
    console.print(f"public key: {report.key_source}", highlight=False)
    console.print(f"key fingerprint (sha256) {report.key_fingerprint}", highlight=False)
    console.print(
        f"records, chain, Merkle root, manifest signature: ok; {report.checkpoints} signed "
        "database checkpoints matched",
        highlight=False,
    )
    if report.approvals is not None:
        a = report.approvals
        console.print(
            f"approvals: {a.tokens_verified} state changes re-verified (HMAC, command type, "
            f"target id, target version, command digest, validity window), "
            f"{a.desk_tokens_verified} desk approvals re-verified"
            + (
                f", {a.digest_unchecked} fills without their account/fill time in range "
                "(digest not recomputed)"
                if a.digest_unchecked
                else ""
            ),
            highlight=False,
        )
    else:
        console.print("approvals: not re-verified (pass --hmac-keys)", highlight=False)
    print(
        f"verified {report.count} events, positions {report.first_position}.."
        f"{report.last_position}, merkle root {report.merkle_root}"
    )


def _verify_db(public_key: Path | None) -> None:
    settings = AuditSettings()
    key = load_public_key(public_key or settings.public_key_path)
    with _database(settings) as (log, store), progress_bar() as bar:
        task = bar.add_task("verifying", total=None)
        report = verify_database(
            log, store, key, lambda p, h: bar.update(task, completed=p, total=h)
        )
    if report.problem is not None:
        print(report.problem, file=sys.stderr)
        raise typer.Exit(1)
    source = f"--public-key {public_key}" if public_key else str(settings.public_key_path)
    console.print(f"public key: {source} (fingerprint {key_fingerprint(key)})", highlight=False)
    for note in report.notes:
        console.print(note, highlight=False)
    last = report.last_checkpoint
    print(
        f"verified {report.sealed} sealed events against {report.checkpoints} signed "
        f"checkpoints"
        + (f" (last: tree size {last.tree_size}, root {last.merkle_root})" if last else "")
        + f"; {report.unsealed} newer events not sealed yet"
    )


@audit_app.command("prove")
@_one_line_errors
def prove_command(
    position: Annotated[int, typer.Argument(help="the event's position in the log")],
    out: Annotated[Path | None, typer.Option("--out", help="write the proof here")] = None,
) -> None:
    """Print an inclusion proof (JSON) of one event against the latest signed checkpoint."""
    settings = AuditSettings()
    try:
        public = load_public_key(settings.public_key_path)
    except AuditError:
        public = load_signing_key(settings.signing_key_path).public_key()
    with _database(settings) as (log, store):
        proof = prove(log, store, position, public)
    text = json.dumps(proof, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    with out.open("x", encoding="utf-8") as handle:
        handle.write(text)
    console.print(f"wrote {out}")


@audit_app.command("check-proof")
@_one_line_errors
def check_proof_command(
    proof: Annotated[Path, typer.Argument(help="a proof file from `ais audit prove`")],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="Ed25519 public key (PEM) to trust")
    ] = None,
) -> None:
    """Verify an inclusion proof offline: record hash, audit path, checkpoint signature."""
    report = check_proof(proof, public_key)
    console.print(f"public key: {report.key_source}", highlight=False)
    print(
        f"position {report.position} is included in the signed tree of size "
        f"{report.tree_size}, root {report.merkle_root}"
    )
