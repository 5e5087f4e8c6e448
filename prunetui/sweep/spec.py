"""A sweep file (SWEEP.toml) read and expanded into runs, each config validated up front.

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
or a bad value is reported with the cell it came from.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunetui import config, store
from prunetui.presets import resolve

# Varied over for the mean and its interval; every other varying key is a setting.
SEED_KEYS = ("train.seed",)
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


def cell_text(values: dict[str, Any]) -> str:
    """A cell's settings as ``key = value`` pairs, for messages that name it."""
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
                                             source=f"{spec.source} cell {cell_text(cell)}")
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
