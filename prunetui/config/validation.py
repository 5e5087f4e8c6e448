"""Every value checked once, before any work starts; a problem is a :class:`ConfigError`."""

from __future__ import annotations

import re

from prunetui.config.errors import ConfigError
from prunetui.config.schemes import (
    AT_INIT_SCHEMES,
    SCHEME_HELP,
    is_scheme,
    lr_rewind_iteration,
    rewind_iteration,
)
from prunetui.config.sections import (
    ARCHS,
    DATASETS,
    DEVICES,
    INITS,
    MASK_SOURCES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    SCOPES,
    STRUCTURES,
    UNIT_CRITERIA,
    Config,
    PruneConfig,
    TrainConfig,
)


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
    if p.conv_rate >= 0:
        _check_range("prune.conv_rate", p.conv_rate, 0.0, 0.99)
    _check_positive("prune.rounds", p.rounds, zero_ok=True)
    if p.rounds > 200:
        raise ConfigError("prune.rounds", p.rounds, "must be at most 200")
    _check_range("prune.target_remaining", p.target_remaining, 0.0, 1.0)
    if not p.schemes:
        raise ConfigError("prune.schemes", [], "choose at least one scheme")
    for s in p.schemes:
        if not is_scheme(s):
            raise ConfigError("prune.schemes", list(p.schemes),
                              f"unknown scheme {s!r}; use {SCHEME_HELP}")
    if len(set(p.schemes)) != len(p.schemes):
        raise ConfigError("prune.schemes", list(p.schemes), "each scheme may appear once")
    _check_choice("prune.mask_from", p.mask_from, MASK_SOURCES)
    if any(not pattern.strip() for pattern in p.skip):
        raise ConfigError("prune.skip", list(p.skip), "patterns must not be empty")
    if p.mask_from == "rewind" and "rewind" not in p.schemes:
        raise ConfigError("prune.mask_from", p.mask_from,
                          "'rewind' needs 'rewind' in prune.schemes (its masks are shared)")
    _check_structure(p)

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
    _check_schedule(t)
    for s in p.schemes:
        k = rewind_iteration(s) or lr_rewind_iteration(s)
        if k and t.epochs == 0 and k >= t.iterations:
            raise ConfigError("prune.schemes", s, f"K in {s.partition(':')[0]}:K must be "
                              f"below train.iterations ({t.iterations})")
    return cfg


def _check_structure(p: PruneConfig) -> None:
    """``prune.structure`` and ``prune.unit_criterion`` (checked, and ignored, with weights).

    Whether ``bn-scale`` finds a BatchNorm after each layer, and whether the network's units
    can be coupled, needs the network: the run checks that when it starts."""
    _check_choice("prune.structure", p.structure, STRUCTURES)
    _check_choice("prune.unit_criterion", p.unit_criterion, UNIT_CRITERIA)
    if p.structure != "unit":
        return
    for s in p.schemes:
        if s in AT_INIT_SCHEMES:
            raise ConfigError("prune.schemes", list(p.schemes),
                              f"{s} is a weight-level method (it scores single weights at "
                              "initialization), so it cannot remove whole units; use "
                              "prune.structure = 'weight' for it, or another scheme")


def _check_schedule(t: TrainConfig) -> None:
    """Learning-rate schedule settings; limits in iterations are checked here when the run
    is sized in iterations, and by prunetui.schedule when it starts (sized in epochs)."""
    _check_choice("train.schedule", t.schedule, SCHEDULES)
    unit, length = ("epochs", t.epochs) if t.epochs else ("iterations", t.iterations)
    if t.milestones and t.schedule != "step":
        raise ConfigError("train.milestones", list(t.milestones),
                          "milestones need train.schedule = 'step'")
    if t.schedule == "step":
        if not t.milestones:
            raise ConfigError("train.milestones", [], "the step schedule needs at least one "
                              f"milestone ({unit} at which the rate is multiplied by gamma)")
        if any(b <= a for a, b in zip(t.milestones, t.milestones[1:], strict=False)):
            raise ConfigError("train.milestones", list(t.milestones),
                              "milestones must be in increasing order, each once")
        if t.milestones[0] <= 0 or t.milestones[-1] >= length:
            raise ConfigError("train.milestones", list(t.milestones),
                              f"each milestone must be in 1..{length - 1} ({unit}, below "
                              f"train.{unit} = {length})")
    if not 0.0 < t.gamma <= 1.0:
        raise ConfigError("train.gamma", t.gamma, "must be in (0, 1]: the factor applied to "
                          "the learning rate at each milestone")
    _check_positive("train.warmup", t.warmup, zero_ok=True)
    if not t.epochs and t.warmup >= t.iterations:
        raise ConfigError("train.warmup", t.warmup, "warmup must be shorter than training "
                          f"(train.iterations = {t.iterations})")
    _check_range("train.finetune_lr", t.finetune_lr, 0.0, 10.0)
