"""Experiment configuration: frozen dataclasses, TOML load/save, ``--set`` overrides, validation.

The TOML key names are a contract shared by presets, the CLI, the app and the tests. Every
value is checked once, here, before any work starts; a problem becomes a :class:`ConfigError`
whose message names the key, the value, what is allowed and the file it came from.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import tomli_w

from prunetui.fileio import atomic_write_text

DATASETS = ("mnist", "fashion-mnist", "faces", "folder", "cifar10", "cifar100")
# Built-in networks; model.arch also takes "torchvision:NAME" and "MODULE:CALLABLE".
ARCHS = ("lenet-300-100", "lightcnn-9", "conv-2", "conv-4", "conv-6", "vgg-19", "resnet-20")
INITS = ("default", "glorot-normal", "kaiming-normal")
SCOPES = ("layer", "global")
BASE_SCHEMES = ("keep", "reinit", "rewind", "random-mask")
MASK_SOURCES = ("own", "rewind")
OPTIMIZERS = ("adam", "sgd")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "tf32")  # prunetui.precision holds what each means


class ConfigError(ValueError):
    """A setting that cannot be used; ``str()`` is a one-paragraph message for the user."""

    def __init__(self, key: str, value: Any, allowed: str, source: str | None = None) -> None:
        self.key, self.value, self.allowed, self.source = key, value, allowed, source
        where = f" in {source}" if source else ""
        super().__init__(f"Invalid setting {key} = {value!r}{where}: {allowed}.")

    def with_source(self, source: str) -> ConfigError:
        return ConfigError(self.key, self.value, self.allowed, source)


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    root: str = "data"
    validation: int = 5000
    train_subset: int = 0
    # Faces only: fractions of each person's images for train / validation / test.
    split: tuple[float, ...] = (0.70, 0.15, 0.15)
    # Faces and folder: images are resized to image_size, then cropped to crop.
    image_size: int = 144
    crop: int = 128
    # Folder only: 1 (grayscale) or 3 (RGB) channels.
    channels: int = 1
    # Folder and CIFAR: MB the uint8 images may take on the training device; 0 = sized from
    # free device memory (CPU: available RAM). Larger sets stream from disk.
    memory_budget_mb: int = 0


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "lenet-300-100"
    # "default" = the network's own (Glorot normal for LeNet and LightCNN; see prunetui.nets).
    init: str = "default"
    # LightCNN only: channel-width multiplier (1.0 is the paper's network).
    width: float = 1.0
    # The classifier's layer name; "" = the last nn.Linear / nn.Conv2d.
    output: str = ""
    # Keyword arguments for a torchvision: or MODULE:CALLABLE network's factory.
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PruneConfig:
    scope: str = "layer"
    rate: float = 0.2
    output_rate: float = 0.1
    # Rate for the first layer; negative means "same as rate".
    first_rate: float = -1.0
    rounds: int = 15
    # Stop once this fraction of prunable weights or fewer remain; 0 means "use rounds".
    target_remaining: float = 0.0
    schemes: tuple[str, ...] = ("keep", "reinit", "rewind")
    mask_from: str = "own"
    # fnmatch patterns of layer names left dense, e.g. ["conv", "blocks.*.shortcut.0"].
    skip: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adam"
    lr: float = 1.2e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 60
    iterations: int = 50000
    # When > 0, overrides iterations with this many passes over the training set.
    epochs: int = 0
    eval_every: int = 100
    seed: int = 0
    replicates: int = 1
    device: str = "auto"
    # CPU threads for training; 0 = fitted to the free cores when the run starts. The value
    # used is recorded in the run directory and kept on resume (thread count changes float sums).
    threads: int = 0
    # fp32 | bf16 (autocast where supported, else fp32 + warning) | tf32 (CUDA matmuls only).
    # The precision used is recorded in the run directory and kept on resume.
    precision: str = "fp32"


@dataclass(frozen=True)
class LogConfig:
    # Folder for TensorBoard event files (a subfolder per run); "" = no TensorBoard logging.
    tensorboard: str = ""


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def first_rate(self) -> float:
        return self.prune.rate if self.prune.first_rate < 0 else self.prune.first_rate

    @property
    def num_rounds(self) -> int:
        """Pruning rounds after the dense round 0 (from ``rounds`` or ``target_remaining``)."""
        target = self.prune.target_remaining
        if target <= 0:
            return self.prune.rounds
        # The hidden-layer rate dominates the overall fraction; stop at the first round below.
        return max(1, math.ceil(math.log(target) / math.log(1.0 - self.prune.rate) - 1e-9))


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "prune": PruneConfig,
    "train": TrainConfig,
    "log": LogConfig,
}


# ---------------------------------------------------------------------------------------------
# Validation


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(key, value, "allowed values are " + ", ".join(repr(c) for c in choices))


def _check_range(key: str, value: float, low: float, high: float, *, low_open=False) -> None:
    ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ConfigError(key, value, f"must be in {bracket}{low}, {high}]")


def _check_positive(key: str, value: int | float, *, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(key, value, "must be >= 0" if zero_ok else "must be > 0")


def is_scheme(name: str) -> bool:
    if name in BASE_SCHEMES:
        return True
    head, _, tail = name.partition(":")
    return head == "rewind" and tail.isdigit()


def rewind_iteration(scheme: str) -> int | None:
    """The K of ``rewind:K`` (0 for plain ``rewind``), None for other schemes."""
    if scheme == "rewind":
        return 0
    head, _, tail = scheme.partition(":")
    return int(tail) if head == "rewind" and tail.isdigit() else None


def check_arch(arch: str) -> None:
    """Syntax of ``model.arch`` (whether an import works is checked when the network is built)."""
    dotted = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"
    if arch in ARCHS or re.fullmatch(rf"torchvision:[A-Za-z_]\w*|{dotted}:{dotted}", arch):
        return
    raise ConfigError("model.arch", arch, "use a built-in network (" + ", ".join(ARCHS)
                      + "), 'torchvision:NAME' or 'MODULE:CALLABLE' (a factory of your own)")


def validate(cfg: Config) -> Config:
    d, m, p, t = cfg.data, cfg.model, cfg.prune, cfg.train
    _check_choice("data.dataset", d.dataset, DATASETS)
    if not d.root:
        raise ConfigError("data.root", d.root, "must name a folder")
    _check_positive("data.validation", d.validation, zero_ok=True)
    _check_positive("data.train_subset", d.train_subset, zero_ok=True)
    if len(d.split) != 3 or any(f < 0 for f in d.split) or abs(sum(d.split) - 1.0) > 1e-6:
        raise ConfigError("data.split", list(d.split), "needs three fractions >= 0 summing to 1")
    if d.split[0] == 0:
        raise ConfigError("data.split", list(d.split), "the training fraction must be > 0")
    _check_positive("data.image_size", d.image_size)
    _check_range("data.crop", d.crop, 16, d.image_size)
    if d.channels not in (1, 3):
        raise ConfigError("data.channels", d.channels, "must be 1 (grayscale) or 3 (RGB)")
    _check_positive("data.memory_budget_mb", d.memory_budget_mb, zero_ok=True)

    check_arch(m.arch)
    _check_choice("model.init", m.init, INITS)
    if m.args and m.arch in ARCHS:
        raise ConfigError("model.args", m.args, "only for torchvision: and MODULE:CALLABLE "
                          "networks (the built-in ones take no arguments)")
    _check_range("model.width", m.width, 0.0, 4.0, low_open=True)
    if m.arch == "lightcnn-9" and d.dataset != "faces":
        raise ConfigError("model.arch", m.arch, "lightcnn-9 needs data.dataset = 'faces'")
    if m.arch == "lenet-300-100" and d.dataset == "faces":
        raise ConfigError("model.arch", m.arch, "data.dataset = 'faces' needs "
                          "model.arch = 'lightcnn-9'")

    _check_choice("prune.scope", p.scope, SCOPES)
    if not 0.0 < p.rate < 1.0:
        raise ConfigError("prune.rate", p.rate, "must be in (0, 1): a fraction of the surviving "
                          "weights, below 1 since a round cannot remove every weight")
    _check_range("prune.output_rate", p.output_rate, 0.0, 0.99)
    if p.first_rate >= 0:
        _check_range("prune.first_rate", p.first_rate, 0.0, 0.99)
    _check_positive("prune.rounds", p.rounds, zero_ok=True)
    if p.rounds > 200:
        raise ConfigError("prune.rounds", p.rounds, "must be at most 200")
    _check_range("prune.target_remaining", p.target_remaining, 0.0, 1.0)
    if not p.schemes:
        raise ConfigError("prune.schemes", [], "choose at least one scheme")
    for s in p.schemes:
        if not is_scheme(s):
            raise ConfigError("prune.schemes", list(p.schemes),
                              f"unknown scheme {s!r}; use keep, reinit, rewind, rewind:K "
                              "(an iteration), random-mask")
    if len(set(p.schemes)) != len(p.schemes):
        raise ConfigError("prune.schemes", list(p.schemes), "each scheme may appear once")
    _check_choice("prune.mask_from", p.mask_from, MASK_SOURCES)
    if any(not pattern.strip() for pattern in p.skip):
        raise ConfigError("prune.skip", list(p.skip), "patterns must not be empty")
    if p.mask_from == "rewind" and "rewind" not in p.schemes:
        raise ConfigError("prune.mask_from", p.mask_from,
                          "'rewind' needs 'rewind' in prune.schemes (its masks are shared)")

    _check_choice("train.optimizer", t.optimizer, OPTIMIZERS)
    _check_range("train.lr", t.lr, 0.0, 10.0, low_open=True)
    _check_range("train.momentum", t.momentum, 0.0, 0.999)
    _check_range("train.weight_decay", t.weight_decay, 0.0, 1.0)
    _check_positive("train.batch_size", t.batch_size)
    _check_positive("train.iterations", t.iterations)
    _check_positive("train.epochs", t.epochs, zero_ok=True)
    _check_positive("train.eval_every", t.eval_every)
    _check_positive("train.seed", t.seed, zero_ok=True)
    _check_range("train.replicates", t.replicates, 1, 100)
    _check_choice("train.device", t.device, DEVICES)
    _check_range("train.threads", t.threads, 0, 1024)
    _check_choice("train.precision", t.precision, PRECISIONS)
    for s in p.schemes:
        k = rewind_iteration(s)
        if k and t.epochs == 0 and k >= t.iterations:
            raise ConfigError("prune.schemes", s, f"rewind:K needs K < train.iterations "
                              f"({t.iterations})")
    return cfg


# ---------------------------------------------------------------------------------------------
# Building from dictionaries (TOML) with type checks


def _type_name(tp: Any) -> str:
    if get_origin(tp) is tuple:
        return f"a list of {_type_name(get_args(tp)[0])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    if get_origin(tp) is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, value, "must be a table, e.g. {depth = 3}")
        return dict(value)
    if get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, value, f"must be {_type_name(tp)}")
        inner = get_args(tp)[0]
        return tuple(_coerce(key, v, inner) for v in value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) and tp is not bool:
        raise ConfigError(key, value, f"must be {_type_name(tp)}")
    if not isinstance(value, tp):
        raise ConfigError(key, value, f"must be {_type_name(tp)}")
    return value


def from_dict(raw: dict[str, Any], source: str | None = None) -> Config:
    """Build and validate a Config; unknown sections or keys are errors, missing keys default."""
    try:
        sections = {}
        for name, value in raw.items():
            if name not in SECTIONS:
                raise ConfigError(name, value, "unknown section; sections are "
                                  + ", ".join(f"[{s}]" for s in SECTIONS))
            if not isinstance(value, dict):
                raise ConfigError(name, value, f"must be a table [{name}]")
            sections[name] = _section_from_dict(name, value)
        return validate(Config(**sections))
    except ConfigError as err:
        raise err.with_source(source) if source else err from None


def _section_from_dict(name: str, raw: dict[str, Any]) -> Any:
    cls = SECTIONS[name]
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{name}.{key}", value,
                              f"unknown key; [{name}] accepts " + ", ".join(sorted(known)))
        values[key] = _coerce(f"{name}.{key}", value, hints[key])
    return cls(**values)


def to_dict(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SECTIONS:
        section = dataclasses.asdict(getattr(cfg, name))
        out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in section.items()}
    return out


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError("config", str(path), f"cannot read the file ({err.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("config", str(path), f"not valid TOML ({err})") from None
    return from_dict(raw, source=str(path))


def dumps(cfg: Config) -> str:
    return tomli_w.dumps(to_dict(cfg))


def save(cfg: Config, path: str | Path) -> None:
    atomic_write_text(Path(path), dumps(cfg))


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.epochs=2"`` -> ``("train.epochs", 2)``; values are TOML, bare words are strings."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or "." not in key:
        raise ConfigError(key or text, text, "overrides look like SECTION.KEY=VALUE, "
                          "e.g. train.epochs=2")
    value = value.strip()
    try:
        return key, tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value


def apply_overrides(cfg: Config, overrides: list[tuple[str, Any]],
                    source: str = "--set") -> Config:
    raw = to_dict(cfg)
    for key, value in overrides:
        section, _, name = key.partition(".")
        if section not in raw:
            raise ConfigError(key, value, "unknown section; sections are "
                              + ", ".join(SECTIONS), source)
        raw[section][name] = value
    return from_dict(raw, source=source)
