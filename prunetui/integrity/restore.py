"""What a resume can restore without retraining: ``config.toml`` from the copy every checkpoint
keeps, and ``init.pt`` (θ0) regenerated from the seed when its recorded digest confirms it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prunetui.fileio import (
    INTACT,
    MISSING,
    UNVERIFIED,
    StoreError,
    atomic_write_text,
    move_aside,
    recorded_digests,
    sha256,
    verify,
    write_checked,
)
from prunetui.integrity.assess import InitVerdict
from prunetui.store.checkpoint import CannotResume, load_checkpoint
from prunetui.store.layout import CONFIG_FILE, RunDir

if TYPE_CHECKING:
    from prunetui.config import Config


def config_copies(run: RunDir) -> Iterator[tuple[Path, str]]:
    """(checkpoint, config text) of every checkpoint holding a copy, newest first."""
    for path in sorted(run.all_checkpoints(), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            text = load_checkpoint(path).get("config")
        except StoreError:
            continue
        if isinstance(text, str):
            yield path, text


def restore_config(run: RunDir) -> str | None:
    """Put back a damaged or deleted config.toml from the copy in a checkpoint.

    Returns a one-line note when it did; None when config.toml is fine or nothing holds a copy
    (the caller then reports the config error as usual).
    """
    state = verify(run.config_path)
    if state == INTACT or (state == UNVERIFIED and _loads(run)):
        return None
    accepted = recorded_digests(run.config_path)
    for path, text in config_copies(run):
        if accepted is not None and sha256(text.encode("utf-8")) not in accepted:
            continue
        why = "was missing" if state == MISSING else "was damaged"
        move_aside(run.config_path)
        atomic_write_text(run.config_path, text, checksum=True)
        return f"{CONFIG_FILE} {why}: restored from {run.relative(path)}"
    return None


def _loads(run: RunDir) -> bool:
    try:
        run.config()
        return True
    except (ValueError, OSError):  # ConfigError, or bytes that are not UTF-8
        return False


def config_of(run: RunDir) -> tuple[Config | None, str]:
    """The run's Config (from config.toml, else from a checkpoint's copy) and a problem."""
    import tomllib

    from prunetui.config import from_dict

    try:
        return run.config(), ""
    except (ValueError, OSError) as err:
        problem = str(err).splitlines()[0]
    for path, text in config_copies(run):
        try:
            return from_dict(tomllib.loads(text), source=str(path)), problem
        except ValueError:
            continue
    return None, problem


def regenerate_init(run: RunDir, replicate: int, data: bytes | memoryview, verdict: InitVerdict,
                    problem: str) -> str:
    """Replace a damaged or missing init.pt by ``data`` (θ0 regenerated from the seed) when its
    recorded digest confirms it; otherwise stop, saying what is lost and what still works."""
    path = run.init_checkpoint(replicate)
    what = "is damaged" if path.exists() else "is missing"
    accepted = recorded_digests(path)
    if accepted is not None and sha256(data) in accepted:
        move_aside(path)
        write_checked(path, data)
        return (f"{run.relative(path)} {what}: regenerated from the seed and confirmed by its "
                "checksum, nothing lost")
    if not verdict.needed:
        return (f"{run.relative(path)} {what} and cannot be confirmed; replicate "
                f"{replicate + 1} is finished and does not need it")
    raise CannotResume(
        f"{run.relative(path)} {what} ({problem}) and the starting weights regenerated from "
        f"the seed cannot be confirmed against a recorded checksum, so replicate "
        f"{replicate + 1} cannot be continued. The finished rounds are intact: 'prunetui "
        f"report {run.path}' shows them, 'prunetui export {run.path} OUT' writes any of them as "
        f"a model file and 'prunetui check {run.path}' lists every file. To get the remaining "
        f"rounds, start the same experiment afresh: prunetui run {run.config_path}")
