"""Configs from and to TOML: typed loading (unknown keys are errors), saving, ``--set``."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import tomli_w

from prunetui.config.errors import ConfigError
from prunetui.config.sections import SECTIONS, Config
from prunetui.config.validation import validate
from prunetui.fileio import atomic_write_text


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
