"""What every subcommand shares: exit codes, consoles and the one-paragraph error and warnings.

Command modules import these from here, never from each other, so no two of them import
each other (``run`` used to hold these and import the modules that imported it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from prunetui.exitcodes import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE

if TYPE_CHECKING:
    from prunetui import store


def console(stderr: bool = False, highlight: bool = True,
            kind: type[Console] = Console) -> Console:
    # soft_wrap: paths and commands in messages stay on one line, ready to copy.
    return kind(stderr=stderr, soft_wrap=True, highlight=highlight)


def err_console() -> Console:
    return console(stderr=True)


def error(err: Console, message: str, code: int) -> int:
    """Print ``message`` as one ``error:`` paragraph (no traceback); return the exit ``code``."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return code


def warn_lines(err: Console, run: store.RunDir, problems: list[store.LineProblem],
               most: int = 10) -> None:
    """One warning per damaged metrics line (file and line number); the rest is still used."""
    for problem in problems[:most]:
        err.print(f"[yellow]warning:[/] {escape(str(run.path / problem.path.name))} line "
                  f"{problem.line}: {escape(problem.reason)} (skipped)", highlight=False)
    if len(problems) > most:
        err.print(f"[yellow]warning:[/] and {len(problems) - most} more damaged lines. See: "
                  f"prunetui check {escape(str(run.path))}", highlight=False)
    elif problems:
        err.print(f"[yellow]warning:[/] see: prunetui check {escape(str(run.path))}",
                  highlight=False)


__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_RUNTIME", "EXIT_USAGE", "console", "err_console",
           "error", "warn_lines"]
