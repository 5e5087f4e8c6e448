"""Sweeps: one SWEEP.toml expanded into ordinary runs grouped under ``models/<sweep>/``.

```toml
name = "sweep-quick"          # the folder under models/ (default: the file's name)
base = "quick"                # a preset name, or a config file relative to this file
[set]                         # settings for every run (optional)
train.iterations = 500
[grid]                        # every combination of these values
data.dataset = ["mnist", "fashion-mnist"]
train.seed = [0, 1]
[[variants]]                  # and/or a list of hand-written settings, each crossed with the grid
name = "late-rewind"
prune.schemes = ["rewind:100"]
```

Every cell is built with ``config.apply_overrides`` before anything starts, so an unknown key
or a bad value is reported with the cell it came from. The sweep folder holds ``sweep.toml``
(the expansion: each run's name, setting and overrides) and one ordinary run directory per
cell, so resume, reports and the app work on them unchanged. Readers of a sweep import no torch.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import statistics
import time
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from prunetui import config, results, store
from prunetui.presets import PRESETS_DIR, resolve  # noqa: F401  (PRESETS_DIR: for callers)

RECORD_FILE = "sweep.toml"
SEED_KEYS = ("train.seed",)  # varied over for mean ± std; every other varying key is a setting
TOP_KEYS = ("name", "base", "set", "grid", "variants")


class SweepError(ValueError):
    """A sweep that cannot be expanded or reused; ``str()`` is a one-paragraph message."""


@dataclass(frozen=True)
class SweepSpec:
    name: str
    base: Path
    source: Path
    settings: dict[str, Any]
    grid: dict[str, list[Any]]
    variants: list[dict[str, Any]]


@dataclass(frozen=True)
class SweepRun:
    """One cell of the sweep: an ordinary run with a readable name."""

    name: str
    setting: str  # label of the non-seed values, shared by the seeds of one setting
    overrides: dict[str, Any]  # what this cell sets on top of the base (grid, variant, [set])
    cfg: config.Config


# ---------------------------------------------------------------------------------------------
# Reading SWEEP.toml


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data": {"dataset": x}}`` -> ``{"data.dataset": x}`` (TOML dotted keys nest)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, full + "."))
        else:
            flat[full] = value
    return flat


def resolve_base(base: str, sweep_file: Path) -> Path:
    """A config path relative to the sweep file, a path from here, or a preset name."""
    beside = sweep_file.parent / base
    if beside.is_file():
        return beside
    try:
        return resolve(base)
    except config.ConfigError as err:
        raise SweepError(f"{sweep_file}: base: {err}") from None


def find_sweep_file(name_or_path: str) -> Path:
    """A sweep file path, or the name of a shipped sweep preset (``sweep-quick``)."""
    try:
        return resolve(name_or_path)
    except config.ConfigError:
        return Path(name_or_path)  # load_spec says it cannot be read


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SweepError(f"Cannot read the sweep file {path} ({err.strerror}).") from None
    except tomllib.TOMLDecodeError as err:
        raise SweepError(f"{path} is not valid TOML ({err}).") from None
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise SweepError(f"{path}: unknown key {unknown[0]!r}; a sweep file has "
                         + ", ".join(TOP_KEYS) + " (settings go in [set], [grid] or "
                         "[[variants]]).")
    if not isinstance(raw.get("base"), str):
        raise SweepError(f"{path}: base = \"PRESET\" or \"config.toml\" is required (the config "
                         "every run starts from).")
    name = raw.get("name", path.stem)
    if not isinstance(name, str):
        raise SweepError(f"{path}: name must be a string.")
    try:
        store.check_run_name(name)
    except store.StoreError as err:
        raise SweepError(f"{path}: sweep {err}") from None
    for table in ("set", "grid"):
        if not isinstance(raw.get(table, {}), dict):
            raise SweepError(f"{path}: [{table}] must be a table of SECTION.KEY = value.")
    grid = _flatten(raw.get("grid", {}))
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{path}: grid {key} = {values!r} must be a non-empty list of "
                             f"values, e.g. {key} = [a, b].")
    variants = raw.get("variants", [])
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise SweepError(f"{path}: variants must be an array of tables, [[variants]].")
    return SweepSpec(name=name, base=resolve_base(raw["base"], path), source=path,
                     settings=_flatten(raw.get("set", {})), grid=grid,
                     variants=[_flatten(v) for v in variants])


# ---------------------------------------------------------------------------------------------
# Expansion


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "+".join(_value_text(v) for v in value)
    return str(value)


def _part(key: str, value: Any) -> str:
    """A word names itself (``mnist``); a number or a list needs its key (``seed-0``)."""
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*", value):
        return value
    return f"{key}-{_value_text(value)}"


def _short_keys(keys: list[str]) -> dict[str, str]:
    """``train.seed`` -> ``seed``, unless two varying keys end the same way."""
    tails = [k.rpartition(".")[2] for k in keys]
    return {k: t if tails.count(t) == 1 else k for k, t in zip(keys, tails, strict=True)}


def _label(parts: list[str]) -> str:
    text = "_".join(parts) or "run"
    return re.sub(r"[^A-Za-z0-9._+-]", "-", text).lstrip("._+-")[:100] or "run"


def _cell_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in values.items()) or "(no overrides)"


def expand(spec: SweepSpec) -> list[SweepRun]:
    """Every run of the sweep, each config validated; the first bad cell raises SweepError."""
    try:
        base = config.load(spec.base)
    except config.ConfigError as err:
        raise SweepError(f"Sweep {spec.source}: base config: {err}") from None
    variants = spec.variants or [{}]
    keys = list(spec.grid)
    varying = keys + [k for v in variants for k in v if k != "name" and k not in keys]
    varying = list(dict.fromkeys(varying))
    short = _short_keys(varying)
    runs: list[SweepRun] = []
    names: set[str] = set()
    for variant in variants:
        variant_name = variant.get("name")
        variant_values = {k: v for k, v in variant.items() if k != "name"}
        for combo in itertools.product(*(spec.grid[k] for k in keys)):
            cell = {**variant_values, **dict(zip(keys, combo, strict=True))}
            overrides = {**spec.settings, **cell}
            try:
                cfg = config.apply_overrides(base, list(overrides.items()),
                                             source=f"{spec.source} cell {_cell_text(cell)}")
            except config.ConfigError as err:
                raise SweepError(str(err)) from None
            labelled: list[tuple[str | None, str]] = (
                [(None, str(variant_name))] if variant_name is not None else [])
            labelled += [(k, _part(short[k], cell[k])) for k in varying
                         if k in cell and (variant_name is None or k not in variant_values)]
            setting = [text for k, text in labelled if k not in SEED_KEYS]
            name = _label([text for _, text in labelled])
            while name in names:  # values that print alike (1 and 1.0) still get two runs
                name += "+"
            names.add(name)
            runs.append(SweepRun(name=name, setting=_label(setting) if setting else "all",
                                 overrides=overrides, cfg=cfg))
    return runs


def with_threads(runs: list[SweepRun], threads: int, spec: SweepSpec) -> list[SweepRun]:
    """Give every run ``train.threads`` (its share of the cores) unless the sweep sets it."""
    if "train.threads" in spec.settings or "train.threads" in spec.grid or any(
            "train.threads" in v for v in spec.variants):
        return runs
    return [SweepRun(r.name, r.setting, r.overrides,
                     config.apply_overrides(r.cfg, [("train.threads", threads)]))
            for r in runs]


# ---------------------------------------------------------------------------------------------
# The sweep folder


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

    def entries(self) -> list[dict[str, Any]]:
        return list(self.record().get("runs", []))

    def runs(self) -> list[store.RunDir]:
        return [store.RunDir(self.path / e["name"]) for e in self.entries()]


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
                                 f"sweep gives it ({_cell_text(run.overrides)}). Use another "
                                 "sweep name, or delete that run.")
    for run in runs:
        if not store.RunDir(sweep.path / run.name).exists():
            store.create_run(sweep.path, run.name, config.dumps(run.cfg))
    record = {
        "name": spec.name, "source": str(spec.source.resolve()), "base": str(spec.base.resolve()),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "set": spec.settings, "grid": spec.grid,
        "runs": [{"name": r.name, "setting": r.setting, "overrides": r.overrides} for r in runs],
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


_summaries: dict[str, tuple[tuple, dict[str, str]]] = {}


def files_signature(sweep: SweepDir) -> tuple:
    return store.files_signature([sweep.record_path] + [
        r.path / f for r in sweep.runs() for f in (store.METRICS_FILE, store.STATUS_FILE)])


def sweep_summary(sweep: SweepDir) -> dict[str, str]:
    """:func:`summarize`, recomputed only when a file of the sweep changed (lists refresh often)."""
    key, sig = str(sweep.path), files_signature(sweep)
    cached = _summaries.get(key)
    if cached is None or cached[0] != sig:
        cached = _summaries[key] = (sig, summarize(sweep))
    return dict(cached[1])


def run_states(sweep: SweepDir) -> list[str]:
    """Each run's state, ``waiting`` before its first start and ``missing`` without a folder."""
    return [("missing" if not r.exists() else "waiting" if not r.status_path.exists()
             else r.read_status().effective_state) for r in sweep.runs()]


def summarize(sweep: SweepDir) -> dict[str, str]:
    """One row of a runs list for a whole sweep (same keys as results.run_summary)."""
    runs = sweep.runs()
    states = run_states(sweep)
    counts = {s: states.count(s) for s in dict.fromkeys(states)}
    state = (store.RUNNING if counts.get(store.RUNNING) else
             store.FINISHED if counts.get(store.FINISHED) == len(runs) else store.INTERRUPTED)
    best = max(comparison(sweep), key=lambda r: (r.round > 0, r.mean), default=None)
    return {
        "name": f"{sweep.name}/",
        "status": state,
        "dataset": f"sweep of {len(runs)} runs",
        "schemes": ", ".join(f"{n} {s}" for s, n in counts.items()),
        "rounds": f"{counts.get(store.FINISHED, 0)}/{len(runs)} done",
        "dense": "-",
        "best": (f"{100 * best.mean:.2f}% ({best.setting}, {best.scheme}, "
                 f"{100 * best.remaining:.1f}% left)" if best and best.round > 0 else "-"),
    }


# ---------------------------------------------------------------------------------------------
# Comparison across settings: mean ± std over seeds at each remaining-weights level


@dataclass(frozen=True)
class ComparisonRow:
    setting: str
    scheme: str
    round: int
    remaining: float
    mean: float  # test accuracy at early stop, over seeds (and replicates)
    std: float
    seeds: int


def comparison(sweep: SweepDir) -> list[ComparisonRow]:
    """Per setting and scheme, each round's test accuracy over the setting's seeds.

    The dense round 0 is shared by every scheme of a run, so it is repeated under each scheme:
    every curve then starts at the dense network, as in the run's own Lottery Ticket plot.
    """
    groups: dict[tuple[str, str, int], list[results.SegmentResult]] = defaultdict(list)
    schemes_of: dict[str, list[str]] = defaultdict(list)
    for entry in sweep.entries():
        run, setting = store.RunDir(sweep.path / entry["name"]), entry.get("setting", "all")
        try:
            run_schemes = list(run.config().prune.schemes)
        except config.ConfigError:
            continue
        for scheme in run_schemes:
            if scheme not in schemes_of[setting]:
                schemes_of[setting].append(scheme)
        for seg in results.segment_results(run.metrics()):
            for scheme in run_schemes if seg.scheme == results.DENSE else [seg.scheme]:
                groups[(setting, scheme, seg.round)].append(seg)
    order = list(schemes_of)
    rows = []
    for (setting, scheme, round_), segs in groups.items():
        accs = [s.test_acc for s in segs]
        rows.append(ComparisonRow(
            setting=setting, scheme=scheme, round=round_,
            remaining=statistics.fmean(s.remaining for s in segs),
            mean=statistics.fmean(accs), std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
            seeds=len(accs)))
    return sorted(rows, key=lambda r: (order.index(r.setting),
                                       schemes_of[r.setting].index(r.scheme), r.round))


def comparison_table(rows: list[ComparisonRow]) -> tuple[list[str], list[list[str]]]:
    """Header and cells: one row per setting and round, one column per scheme (mean ± std)."""
    schemes = list(dict.fromkeys(r.scheme for r in rows))
    cells: dict[tuple[str, int], dict[str, ComparisonRow]] = defaultdict(dict)
    for r in rows:
        cells[(r.setting, r.round)][r.scheme] = r
    header = ["setting", "round", "left %", *schemes, "n"]
    body = []
    for (setting, round_), by_scheme in cells.items():
        first = next(iter(by_scheme.values()))
        body.append([setting, str(round_), f"{100 * first.remaining:.1f}",
                     *(_acc(by_scheme.get(s)) for s in schemes),
                     str(max(r.seeds for r in by_scheme.values()))])
    return header, body


def _acc(row: ComparisonRow | None) -> str:
    if row is None:
        return ""
    # Compact (no spaces around ±) so four schemes fit 80 columns.
    return results.format_acc(row.mean, row.std, row.seeds).replace(" ± ", "±")


def comparison_csv(rows: list[ComparisonRow]) -> str:
    lines = ["setting,scheme,round,remaining,test_acc_mean,test_acc_std,seeds"]
    lines += [f"{r.setting},{r.scheme},{r.round},{r.remaining:.6f},{r.mean:.6f},{r.std:.6f},"
              f"{r.seeds}" for r in rows]
    return "\n".join(lines) + "\n"


def comparison_curves(rows: list[ComparisonRow]) -> dict[str, list[ComparisonRow]]:
    """``"setting scheme"`` -> its points in round order, for charts of the means."""
    curves: dict[str, list[ComparisonRow]] = defaultdict(list)
    for r in rows:
        curves[f"{r.setting} {r.scheme}" if r.setting != "all" else r.scheme].append(r)
    return dict(curves)


class RunProgress:
    """How far one run of a sweep is, read from its run store (it trains in another process)."""

    def __init__(self, run: store.RunDir) -> None:
        self.run = run
        self.tail = store.JsonlTail(run.metrics_path)
        self.last: dict[str, Any] | None = None
        self.done, self.active = 0, False
        try:
            cfg = run.config()
            self.total = cfg.train.replicates * (1 + cfg.num_rounds * len(cfg.prune.schemes))
        except config.ConfigError:
            self.total = 0

    def poll(self) -> None:
        rows = self.tail.read_new()
        if rows:
            self.last = rows[-1]
        self.done = sum(1 for _ in self.run.checkpoints.glob("r*/round-*.pt"))
        self.active = self.run.read_status().effective_state == store.RUNNING

    def info(self) -> str:
        r = self.last
        if r is None:
            return "starting"
        label = results.segment_label(r["replicate"], r["round"], r["scheme"])
        return f"{label} it {r['iteration']}: test {100 * r['test_acc']:.2f}%"


def extract_datasets(cfgs: list[config.Config]) -> None:
    """Unpack MNIST-style archives once, before several runs would race to do it at once."""
    from prunetui.data.mnist import _extract_archives  # imports torchvision: driver only

    for root, dataset in {(c.data.root, c.data.dataset) for c in cfgs}:
        if dataset in ("mnist", "fashion-mnist"):
            with contextlib.suppress(Exception):  # a run that lacks its data says so itself
                _extract_archives(root, dataset)
