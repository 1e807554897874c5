"""Terminal helpers shared by the CLI commands: one progress-bar style, on stderr."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from eventsourcing.persistence import PersistenceError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from domain.errors import DomainError


def progress_bar() -> Progress:
    """Transient, on stderr: stdout stays clean for results such as `digest <hex>`."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


F = TypeVar("F", bound=Callable[..., Any])

# Everything bad input or a broken environment can raise; config, key, token and
# validation errors are ValueErrors, file problems OSErrors.
CLEAN_ERRORS = (ValueError, OSError, DomainError, PersistenceError, SQLAlchemyError)


def error_line(exc: BaseException) -> str:
    """One line that says what is wrong, without a traceback."""
    if isinstance(exc, OSError) and not isinstance(exc, PersistenceError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def one_line_errors(func: F) -> F:
    """Known failures print `error: ...` on stderr and exit 1; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CLEAN_ERRORS as exc:
            print(f"error: {error_line(exc)}", file=sys.stderr)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]
