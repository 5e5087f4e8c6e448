"""Presets shipped inside the package, addressable by name: ``prunetui run quick``.

Each preset is a TOML file in ``prunetui/presets/``. Its leading comment block may hold
``# description: ...``, ``# cpu: ...`` and ``# gpu: ...`` lines, shown by ``prunetui presets``
and the app's Load list (without them the first comment line is the description). A preset is
a run config unless it has top-level keys that are not config sections: then it is a sweep
file (``prunetui sweep``). :func:`resolve` turns a name or a path into a file, so every
command that takes a config also takes a preset name. Pure Python: no torch, no Textual.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prunetui.config import SECTIONS, ConfigError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
RUN, SWEEP = "run", "sweep"
META_KEYS = ("description", "cpu", "gpu")


@dataclass(frozen=True)
class Preset:
    name: str
    kind: Literal["run", "sweep"]
    description: str
    cpu: str  # rough wall time on a CPU, e.g. "~80 s (2 cores)"
    gpu: str  # rough wall time on one GPU ("?" when unknown)
    path: Path


class PresetError(ConfigError):
    """A name that is neither a file nor a preset; the message lists the presets."""

    def __init__(self, name: str, message: str) -> None:
        ValueError.__init__(self, message)
        self.key, self.value, self.allowed, self.source = "config", name, message, None

    def with_source(self, source: str) -> PresetError:
        return self


def _header(text: str) -> dict[str, str]:
    """Metadata from the leading comment block; ``first`` is its first line."""
    meta: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line.lstrip("#").strip()
        key, sep, value = body.partition(":")
        if sep and key.strip().lower() in META_KEYS and key.strip().lower() not in meta:
            meta[key.strip().lower()] = value.strip()
        elif body:
            meta.setdefault("first", body)
    return meta


def _kind(text: str) -> Literal["run", "sweep"]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return RUN  # loading it as a config reports the error
    return RUN if all(key in SECTIONS for key in raw) else SWEEP


def read_preset(path: Path) -> Preset:
    text = path.read_text(encoding="utf-8")
    meta = _header(text)
    return Preset(name=path.stem, kind=_kind(text),
                  description=meta.get("description") or meta.get("first", ""),
                  cpu=meta.get("cpu", "?"), gpu=meta.get("gpu", "?"), path=path)


def list_presets(kind: str | None = None) -> list[Preset]:
    """Every shipped preset (of ``kind`` when given), runs first, then by name."""
    found = [read_preset(p) for p in sorted(PRESETS_DIR.glob("*.toml"))]
    found.sort(key=lambda p: (p.kind != RUN, p.name))
    return [p for p in found if kind is None or p.kind == kind]


def _preset_name(text: str) -> str:
    """``quick``, ``quick.toml`` and ``presets/quick.toml`` all name the preset ``quick``."""
    path = Path(text)
    if path.parent not in (Path("."), Path("presets")):
        return ""
    return path.stem if path.suffix == ".toml" else path.name


def resolve(name_or_path: str | Path, kind: str | None = None) -> Path:
    """The file for a config path (when it exists) or a preset name; PresetError otherwise.

    An existing file always wins, so a local ``quick.toml`` is not shadowed; ``presets/X.toml``
    outside a source checkout finds the shipped preset ``X``. With ``kind``, a file of the
    other kind (a sweep given to ``run``) is refused with the command that takes it.
    """
    text = str(name_or_path).strip()
    path = Path(text).expanduser()
    name = _preset_name(text)
    if not path.is_file() and name and (PRESETS_DIR / f"{name}.toml").is_file():
        path = PRESETS_DIR / f"{name}.toml"
    if path.is_file():
        actual = _kind(path.read_text(encoding="utf-8", errors="replace"))
        if kind is not None and actual != kind:
            raise PresetError(text, f"{text} is a {actual} file, not a {kind} config; use: "
                              f"prunetui {actual} {text}")
        return path
    if path.is_dir():
        problem = f"{text} is a folder, not a config file"
    else:
        problem = f"{text!r} is neither a config file nor a preset"
    listing = ", ".join(f"{p.name} ({p.kind})" if p.kind != RUN else p.name
                        for p in list_presets())
    raise PresetError(text, f"{problem}. Presets: {listing}. See them with: prunetui presets")
