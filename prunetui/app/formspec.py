"""The Setup form as data: one :class:`Field` per setting, conversions, and validation.

Validation is the engine's own (``config.from_dict``): the form only parses text into numbers.
``from_dict`` stops at the first problem, so :func:`check` replaces each offending value with
its default and asks again, collecting one message per field. Pure Python: no Textual.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prunetui import config, extras
from prunetui.config import Config, ConfigError

Values = dict[str, Any]  # field key -> widget value (text, selected option, list of options)


@dataclass(frozen=True)
class Field:
    key: str  # "section.name" of the config, or a form-only key (stop_by, length_by, ...)
    label: str
    kind: str  # select | int | float | floats | text | names | schemes | ints | table
    choices: tuple[tuple[str, str], ...] = ()  # (label, value)
    visible: Callable[[Values], bool] | None = None
    section: str = ""
    placeholder: str = ""
    suggestions: tuple[str, ...] = ()  # completions offered while typing a text field

    @property
    def widget_id(self) -> str:
        return "f-" + self.key.replace(".", "-").replace("_", "-")


def _choices(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((v, v) for v in values)


def _is(key: str, *wanted: str) -> Callable[[Values], bool]:
    return lambda values: values.get(key) in wanted


# Built-in networks first, then a few torchvision ones (any torchvision classifier works).
ARCH_SUGGESTIONS = (*config.ARCHS, "torchvision:resnet18", "torchvision:resnet50",
                    "torchvision:mobilenet_v3_small", "torchvision:efficientnet_b0",
                    "torchvision:vgg11_bn")
STOP_BY = (("a number of rounds", "rounds"), ("a target of weights left", "target"))
LENGTH_BY = (("iterations", "iterations"), ("epochs", "epochs"))
SCHEME_LABELS = {
    "keep": "keep: continue from trained weights",
    "finetune": "finetune: trained weights, final rate",
    "lr-rewind": "lr-rewind: trained weights, rate replayed",
    "reinit": "reinit: random re-initialization",
    "rewind": "rewind: winning ticket (reset to init)",
    "random-mask": "random-mask: random pruning control",
    "snip": "snip: pruned at init, |g*w|",
    "grasp": "grasp: pruned at init, -w*Hg",
    "synflow": "synflow: pruned at init, data-free",
}
# Form fields listing the K of "<scheme>:K" entries, e.g. rewind:500.
LATE_FIELDS = {"prune.late_rewind": "rewind", "prune.late_lr_rewind": "lr-rewind"}


def _has_scheme(name: str) -> Callable[[Values], bool]:
    return lambda values: name in (values.get("prune.schemes") or ())

FIELDS: tuple[Field, ...] = (
    Field("data.dataset", "Dataset", "select", _choices(config.DATASETS), section="Data"),
    Field("data.root", "Dataset root", "text", section="Data"),
    Field("data.train_subset", "Training subset (0 all)", "int", section="Data"),
    Field("data.validation", "Validation images", "int", section="Data"),
    Field("data.split", "Faces split tr,val,test", "floats", section="Data",
          visible=_is("data.dataset", "faces")),
    Field("data.image_size", "Faces image size", "int", section="Data",
          visible=_is("data.dataset", "faces")),
    Field("data.crop", "Faces crop", "int", section="Data",
          visible=_is("data.dataset", "faces")),
    Field("model.arch", "Model", "text", section="Model", suggestions=ARCH_SUGGESTIONS,
          placeholder="built-in, torchvision:NAME or MODULE:CALLABLE"),
    Field("model.args", "Model arguments", "table", section="Model",
          visible=lambda values: ":" in str(values.get("model.arch") or ""),
          placeholder="TOML table, e.g. {depth = 3}"),
    Field("model.init", "Initialization", "select", _choices(config.INITS), section="Model"),
    Field("model.width", "LightCNN width", "float", section="Model",
          visible=_is("model.arch", "lightcnn-9")),
    Field("model.output", "Classifier layer", "text", section="Model",
          placeholder="empty = the last Linear/Conv2d"),
    Field("prune.structure", "Prune what", "select",
          (("weight: single weights", "weight"), ("unit: neurons and channels", "unit")),
          section="Pruning"),
    Field("prune.unit_criterion", "Rank units by", "select", _choices(config.UNIT_CRITERIA),
          section="Pruning", visible=_is("prune.structure", "unit")),
    Field("prune.scope", "Pruning scope", "select", _choices(config.SCOPES), section="Pruning"),
    Field("prune.rate", "Rate per round (0-1)", "float", section="Pruning"),
    Field("prune.output_rate", "Output-layer rate", "float", section="Pruning"),
    Field("prune.first_rate", "First-layer rate", "float", section="Pruning",
          placeholder="-1 = same as rate"),
    Field("prune.conv_rate", "Conv rate", "float", section="Pruning",
          placeholder="-1 = same as rate"),
    Field("prune.stop_by", "Prune until", "select", STOP_BY, section="Pruning"),
    Field("prune.rounds", "Rounds", "int", section="Pruning",
          visible=_is("prune.stop_by", "rounds")),
    Field("prune.target_remaining", "Target weights left", "float", section="Pruning",
          visible=_is("prune.stop_by", "target"), placeholder="fraction, e.g. 0.05"),
    Field("prune.schemes", "Schemes", "schemes",
          tuple((SCHEME_LABELS[s], s) for s in config.NAMED_SCHEMES), section="Pruning"),
    Field("prune.late_rewind", "Late rewind at it.", "ints", section="Pruning",
          placeholder="e.g. 500, 1000 (rewind:K)"),
    Field("prune.late_lr_rewind", "LR rewind from it.", "ints", section="Pruning",
          placeholder="e.g. 500 (lr-rewind:K)"),
    Field("prune.mask_from", "Mask source", "select",
          (("own: each scheme prunes its own", "own"),
           ("rewind: all share rewind's", "rewind")), section="Pruning"),
    Field("prune.skip", "Layers left dense", "names", section="Pruning",
          placeholder="name patterns, e.g. conv, *.shortcut.0"),
    Field("train.length_by", "Train for", "select", LENGTH_BY, section="Training"),
    Field("train.iterations", "Iterations per round", "int", section="Training",
          visible=_is("train.length_by", "iterations")),
    Field("train.epochs", "Epochs per round", "int", section="Training",
          visible=_is("train.length_by", "epochs")),
    Field("train.eval_every", "Evaluate every (it.)", "int", section="Training"),
    Field("train.batch_size", "Batch size", "int", section="Training"),
    Field("train.optimizer", "Optimizer", "select", _choices(config.OPTIMIZERS),
          section="Training"),
    Field("train.lr", "Learning rate", "float", section="Training"),
    Field("train.schedule", "Rate schedule", "select", _choices(config.SCHEDULES),
          section="Training"),
    Field("train.milestones", "Step milestones", "ints", section="Training",
          visible=_is("train.schedule", "step"), placeholder="iterations (epochs), e.g. 2000"),
    Field("train.gamma", "Step factor (gamma)", "float", section="Training",
          visible=_is("train.schedule", "step")),
    Field("train.warmup", "Warmup iterations", "int", section="Training"),
    Field("train.finetune_lr", "Finetune rate (0 final)", "float", section="Training",
          visible=_has_scheme("finetune")),
    Field("train.momentum", "Momentum", "float", section="Training",
          visible=_is("train.optimizer", "sgd")),
    Field("train.weight_decay", "Weight decay", "float", section="Training"),
    Field("train.seed", "Seed", "int", section="Training"),
    Field("train.replicates", "Replicates", "int", section="Training"),
    Field("train.device", "Device", "select", _choices(config.DEVICES), section="Training"),
    Field("train.threads", "CPU threads (0 = auto)", "int", section="Training"),
    Field("train.precision", "Precision", "select", _choices(config.PRECISIONS),
          section="Training"),
    Field("log.tensorboard", "TensorBoard folder", "text", section="Logging",
          placeholder="empty = off; needs prunetui[tensorboard]"),
)
BY_KEY = {f.key: f for f in FIELDS}
FORM_ONLY = ("prune.stop_by", *LATE_FIELDS, "train.length_by")
KIND_HINT = {"int": "must be an integer", "float": "must be a number",
             "floats": "must be numbers separated by commas",
             "ints": "must be whole numbers separated by commas",
             "table": "must be a TOML inline table, e.g. {depth = 3, widen = 2}"}


# ---------------------------------------------------------------------------------------------
# Text <-> values


def number_text(value: float) -> str:
    return repr(value) if isinstance(value, int) else f"{value:g}"


def parse(kind: str, text: str) -> Any:
    """The Python value of a text field; ValueError when it does not parse."""
    text = text.strip()
    if kind == "int":
        number = float(text.replace("_", ""))
        if not number.is_integer():
            raise ValueError(text)
        return int(number)
    if kind == "float":
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(text)
        return number
    if kind in ("floats", "ints"):
        items = [t for t in text.replace(";", ",").split(",") if t.strip()]
        return [parse("int" if kind == "ints" else "float", t) for t in items]
    if kind == "names":
        return [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]
    if kind == "table":
        try:
            return tomllib.loads(f"v = {text or '{}'}")["v"] if text else {}
        except tomllib.TOMLDecodeError:
            raise ValueError(text) from None
    return text


def table_text(table: dict[str, Any]) -> str:
    """A dict as a TOML inline table on one line (the text a "table" field shows)."""
    return inline_toml(table) if table else ""


def inline_toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {inline_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(inline_toml(v) for v in value) + "]"
    import tomli_w

    return tomli_w.dumps({"v": value}).partition("=")[2].strip()  # a scalar, TOML-quoted


def values_from_raw(raw: dict[str, Any], base: Values | None = None) -> tuple[Values, list[str]]:
    """Form values from a config dict (a TOML file or ``to_dict``); unknown keys are listed."""
    values = dict(base or values_from_config(Config()))
    unknown = []
    for section, table in raw.items():
        if section not in config.SECTIONS or not isinstance(table, dict):
            unknown.append(section)
            continue
        for name, value in table.items():
            key = f"{section}.{name}"
            field = BY_KEY.get(key)
            if field is None:
                unknown.append(key)
            elif key == "prune.schemes":
                names = [str(v) for v in value] if isinstance(value, list) else []
                values[key] = [s for s in names if s in config.NAMED_SCHEMES]
                for late, scheme in LATE_FIELDS.items():
                    values[late] = ", ".join(s.partition(":")[2] for s in names
                                             if s.partition(":")[0] == scheme and ":" in s)
            elif field.kind == "select":
                values[key] = str(value)
            elif field.kind in ("floats", "ints") and isinstance(value, list):
                values[key] = ", ".join(number_text(v) for v in value)
            elif field.kind == "table" and isinstance(value, dict):
                values[key] = table_text(value)
            elif field.kind == "names" and isinstance(value, list):
                values[key] = ", ".join(str(v) for v in value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                values[key] = number_text(value)
            else:
                values[key] = str(value)
    prune, train = raw.get("prune", {}), raw.get("train", {})
    if isinstance(prune, dict) and "target_remaining" in prune:
        values["prune.stop_by"] = "target" if prune["target_remaining"] else "rounds"
    if isinstance(train, dict) and "epochs" in train:
        values["train.length_by"] = "epochs" if train["epochs"] else "iterations"
    return values, unknown


def values_from_config(cfg: Config) -> Values:
    values: Values = {"prune.stop_by": "rounds", "train.length_by": "iterations",
                      "prune.late_rewind": "", "prune.late_lr_rewind": "",
                      "prune.schemes": []}
    values, _ = values_from_raw(config.to_dict(cfg), base=_blank_values() | values)
    return values


def _blank_values() -> Values:
    return {f.key: "" for f in FIELDS if f.kind != "schemes"}


def raw_from_values(values: Values) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Config dict from form values, and the fields whose text does not parse."""
    raw: dict[str, dict[str, Any]] = {name: {} for name in config.SECTIONS}
    errors: dict[str, str] = {}
    for field in FIELDS:
        if field.key in FORM_ONLY:
            continue
        section, name = field.key.split(".")
        value = values.get(field.key)
        if field.kind in ("select", "text"):
            raw[section][name] = value if value is not None else ""
        elif field.kind == "schemes":
            raw[section][name] = list(value or [])
        else:
            try:
                raw[section][name] = parse(field.kind, str(value or ""))
            except ValueError:
                errors[field.key] = KIND_HINT[field.kind]
    for late_key, scheme in LATE_FIELDS.items():
        try:
            late = parse("ints", str(values.get(late_key) or ""))
            raw["prune"]["schemes"] = raw["prune"]["schemes"] + [f"{scheme}:{k}" for k in late]
        except ValueError:
            errors[late_key] = KIND_HINT["ints"]
    if values.get("prune.stop_by") != "target":
        raw["prune"]["target_remaining"] = 0.0
    if values.get("train.length_by") != "epochs":
        raw["train"]["epochs"] = 0
    return raw, errors


# ---------------------------------------------------------------------------------------------
# Validation through the engine


def check(values: Values, defaults: Config | None = None) -> tuple[Config | None, dict[str, str]]:
    """The validated Config, or None and a message per field key (engine messages)."""
    raw, errors = raw_from_values(values)
    fallback = config.to_dict(defaults or Config())
    for key in errors:  # unparsable text: judge the rest of the form without it
        if key in FORM_ONLY:
            continue
        section, name = key.split(".")
        raw[section][name] = fallback[section][name]
    cfg = None
    for _ in range(len(FIELDS)):
        try:
            cfg = config.from_dict(raw)
            break
        except ConfigError as err:
            key = err.key
            if key == "prune.schemes" and isinstance(err.value, str) and ":" in err.value:
                # a scheme:K entry: shown on its late field
                key = next((k for k, s in LATE_FIELDS.items()
                            if err.value.partition(":")[0] == s), key)
            if key in errors or "." not in key:
                errors.setdefault(key, err.allowed)
                break
            errors[key] = err.allowed
            if key in LATE_FIELDS:
                raw["prune"]["schemes"] = [s for s in raw["prune"]["schemes"]
                                           if not s.startswith(LATE_FIELDS[key] + ":")]
                continue
            section, name = key.split(".", 1)
            if section not in fallback or name not in fallback[section]:
                break
            raw[section][name] = fallback[section][name]
    if cfg is not None and ":" in cfg.model.arch:  # torchvision:NAME or MODULE:CALLABLE
        from prunetui.nets.factory import check_name

        try:
            check_name(cfg.model.arch)
        except ConfigError as err:
            errors[err.key] = err.allowed
    if cfg is not None and cfg.log.tensorboard and not extras.available("tensorboard"):
        errors["log.tensorboard"] = ("needs the tensorboard package: pip install "
                                     "'prunetui[tensorboard]', or leave this empty")
    return (None, errors) if errors else (cfg, errors)


def summary(cfg: Config) -> str:
    """One line on what a valid config will do."""
    rounds = cfg.num_rounds
    left = 100 * (1 - cfg.prune.rate) ** rounds
    segments = cfg.train.replicates * (1 + rounds * len(cfg.prune.schemes))
    length = (f"{cfg.train.epochs} epochs" if cfg.train.epochs
              else f"{cfg.train.iterations:,} iterations")
    return (f"{rounds} pruning rounds after the dense one, down to ~{left:.1f}% of the weights; "
            f"{segments} trainings of {length} each")
