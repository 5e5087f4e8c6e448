"""The sweep folder ``models/<sweep>/``: its record ``sweep.toml`` and one run directory per cell.

The record holds the expansion (each run's name, setting and overrides); the runs are ordinary
run directories, so resume, reports and the app work on them unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import tomli_w

from prunetui import config, store
from prunetui.sweep.spec import SweepError, SweepRun, SweepSpec, cell_text

RECORD_FILE = "sweep.toml"


@dataclass(frozen=True)
class SweepEntry:
    """One run of a sweep as ``sweep.toml`` records it."""

    name: str  # its run directory, inside the sweep folder
    setting: str = "all"  # the label its seeds share (figures and comparisons pool them)
    overrides: dict[str, Any] = field(default_factory=dict)


def is_sweep(path: str | Path) -> bool:
    return bool(str(path)) and (Path(path) / RECORD_FILE).is_file()


def _comparable(cfg: config.Config) -> dict[str, Any]:
    raw = config.to_dict(cfg)
    raw["train"].pop("threads")  # the share of the cores may differ between invocations
    return raw


class SweepDir:
    """A sweep folder: ``sweep.toml`` and its run directories."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def record_path(self) -> Path:
        return self.path / RECORD_FILE

    def record(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.record_path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise SweepError(f"{self.record_path} cannot be read ({err}).") from None

    def entries(self) -> list[SweepEntry]:
        try:
            return msgspec.convert(self.record().get("runs", []), list[SweepEntry])
        except msgspec.ValidationError as err:
            damaged = f"{self.record_path} is damaged: a run entry does not fit ({err})."
            raise SweepError(damaged) from None

    def runs(self) -> list[store.RunDir]:
        return [store.RunDir(self.path / e.name) for e in self.entries()]


def prepare(spec: SweepSpec, runs: list[SweepRun], out_dir: str | Path) -> SweepDir:
    """Create the sweep folder, its record and every run directory not made yet.

    A run directory that exists already is reused as it is (that is how a sweep resumes), but
    only if its config is the one this sweep asks for.
    """
    sweep = SweepDir(Path(out_dir) / spec.name)
    if (sweep.path / store.CONFIG_FILE).exists():
        raise SweepError(f"{sweep.path} is a run, not a sweep; give the sweep another name.")
    for run in runs:
        run_dir = store.RunDir(sweep.path / run.name)
        if run_dir.exists():
            try:
                same = _comparable(run_dir.config()) == _comparable(run.cfg)
            except config.ConfigError:
                same = False
            if not same:
                raise SweepError(f"{run_dir.path} exists with a different config than this "
                                 f"sweep gives it ({cell_text(run.overrides)}). Use another "
                                 "sweep name, or delete that run.")
    for run in runs:
        if not store.RunDir(sweep.path / run.name).exists():
            store.create_run(sweep.path, run.name, config.dumps(run.cfg))
    record = {
        "name": spec.name, "source": str(spec.source.resolve()), "base": str(spec.base.resolve()),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "set": spec.settings, "grid": spec.grid,
        "runs": [dataclasses.asdict(SweepEntry(r.name, r.setting, r.overrides)) for r in runs],
    }
    store.atomic_write_text(sweep.record_path, tomli_w.dumps(record))
    return sweep


def list_sweeps(models_dir: str | Path) -> list[SweepDir]:
    root = Path(models_dir)
    if not root.is_dir():
        return []
    found = [SweepDir(p) for p in root.iterdir() if p.is_dir() and is_sweep(p)]
    return sorted(found, key=lambda s: s.record_path.stat().st_mtime, reverse=True)


def grouped_runs(models_dir: str | Path) -> list[store.RunDir | SweepDir]:
    """The runs of ``models_dir``, then each sweep followed by its runs (for runs lists)."""
    items: list[store.RunDir | SweepDir] = list(store.list_runs(models_dir))
    for sweep in list_sweeps(models_dir):
        items.append(sweep)
        items.extend(r for r in sweep.runs() if r.exists())
    return items


def extract_datasets(cfgs: list[config.Config]) -> None:
    """Unpack MNIST-style archives once, before several runs would race to do it at once."""
    from prunetui.data.mnist import extract_archives  # imports torchvision: driver only

    for root, dataset in {(c.data.root, c.data.dataset) for c in cfgs}:
        if dataset in ("mnist", "fashion-mnist"):
            with contextlib.suppress(Exception):  # a run that lacks its data says so itself
                extract_archives(root, dataset)
