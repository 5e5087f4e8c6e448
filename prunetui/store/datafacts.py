"""``datafacts.json``: what a run's data were when it started, for whoever needs them later.

Written once, when a run first starts (a resume writes it only when it is missing: runs from
before this file, or one a resume moved aside as damaged), from the dataset the run has just
decoded, so recording it costs nothing. Export reads it instead of decoding the training set
again: the per-channel mean and std the training inputs were normalized with, and the class
names in label order, stay right when ``data.root`` has moved or changed since.

Schema (``SCHEMA`` 1), one JSON object::

    {"schema": 1, "dataset": "folder", "input_shape": [3, 32, 32], "num_classes": 3,
     "class_names": ["cat", "dog", "fox"], "train_size": 120,
     "mean": [0.48, 0.45, 0.41], "std": [0.22, 0.22, 0.22]}

``mean`` / ``std``: of pixel/255, one value per channel, exactly the floats training used
(``null`` where inputs are normalized while decoding: MNIST's fixed constants). It has a
SHA-256 sidecar like ``config.toml``; how a damaged or missing one is judged is the integrity
assessment's business (prunetui.integrity.assess), not this module's.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunetui.fileio import DAMAGED, INTACT, MISSING, UNVERIFIED, atomic_write_text, verify

if TYPE_CHECKING:
    from prunetui.data.tensors import TensorData

DATAFACTS_FILE = "datafacts.json"
SCHEMA = 1


@dataclass(frozen=True)
class DataFacts:
    """The facts about a run's data that outlive the data folder."""

    dataset: str
    input_shape: tuple[int, ...]  # one model input
    num_classes: int
    class_names: tuple[str, ...]  # in label order; () when the dataset names none
    train_size: int  # training examples the run drew from
    mean: tuple[float, ...] | None  # per channel, of pixel/255; None: normalized when decoded
    std: tuple[float, ...] | None
    schema: int = SCHEMA

    @classmethod
    def of(cls, data: TensorData) -> DataFacts:
        """The facts of a decoded dataset (its ``mean``/``std`` as training uses them: a
        tuple per channel for image folders and CIFAR, one float for faces)."""
        return cls(dataset=data.name, input_shape=tuple(int(n) for n in data.input_shape),
                   num_classes=int(data.num_classes),
                   class_names=tuple(str(c) for c in data.class_names),
                   train_size=int(data.train_size),
                   mean=_channels(getattr(data, "mean", None)),
                   std=_channels(getattr(data, "std", None)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, doc: Any) -> DataFacts:
        """Parse and check one record; ValueError says what is wrong."""
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"schema {doc.get('schema')!r}, expected {SCHEMA}")
        missing = [f for f in ("dataset", "input_shape", "num_classes", "class_names",
                               "train_size", "mean", "std") if f not in doc]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        mean, std = _floats(doc["mean"], "mean"), _floats(doc["std"], "std")
        if (mean is None) != (std is None) or (mean and std and len(mean) != len(std)):
            raise ValueError("mean and std differ in length")
        if not isinstance(doc["dataset"], str):
            raise ValueError("dataset is not a name")
        names = doc["class_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("class_names is not a list of names")
        return cls(dataset=doc["dataset"], input_shape=_ints(doc["input_shape"], "input_shape"),
                   num_classes=_count(doc["num_classes"], "num_classes"),
                   class_names=tuple(names), train_size=_count(doc["train_size"], "train_size"),
                   mean=mean, std=std)

    def differences(self, other: DataFacts) -> list[str]:
        """The fields that differ from ``other``'s, e.g. ``["mean", "train_size"]``."""
        mine, theirs = asdict(self), asdict(other)
        return [k for k in mine if mine[k] != theirs[k]]


def _channels(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return (float(value),)


def _floats(value: Any, what: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and value and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in value)
    if not ok:
        raise ValueError(f"{what} is not a list of numbers")
    return tuple(float(v) for v in value)


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ValueError(f"{what} is not a list of sizes")
    return tuple(value)


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} is not a count")
    return value


@dataclass(frozen=True)
class FactsProbe:
    """``datafacts.json`` of one run: its state and, when it loads, its facts."""

    path: Path
    state: str  # INTACT, UNVERIFIED (no sidecar, but it loads), DAMAGED or MISSING
    facts: DataFacts | None = None
    problem: str = ""  # why it is damaged

    @property
    def ok(self) -> bool:
        return self.state in (INTACT, UNVERIFIED)


def facts_path(run_path: Path) -> Path:
    return Path(run_path) / DATAFACTS_FILE


def read_facts(run_path: Path) -> FactsProbe:
    """The recorded facts of the run in ``run_path``; never raises."""
    path = facts_path(run_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return FactsProbe(path, MISSING, problem="missing")
    except OSError as err:
        return FactsProbe(path, DAMAGED, problem=f"unreadable: {err.strerror or err}")
    state = verify(path, data)
    if state == DAMAGED:
        return FactsProbe(path, DAMAGED, problem="fails its checksum")
    try:
        facts = DataFacts.from_dict(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        return FactsProbe(path, DAMAGED, problem=str(err).splitlines()[0] or "not valid JSON")
    return FactsProbe(path, state, facts)


def write_facts(run_path: Path, facts: DataFacts) -> None:
    """Write ``datafacts.json`` atomically, with its SHA-256 sidecar."""
    atomic_write_text(facts_path(run_path), facts.to_json(), checksum=True)


def record_facts(run_path: Path, data: TensorData) -> str | None:
    """On every start of a run: write the facts of ``data`` when none are recorded (a resume
    runs after the damage assessment moved a damaged file aside); otherwise keep the recorded
    ones (the run's first start). Returns a warning when ``data`` differs
    from them (``data.root`` changed since the run started), else None."""
    found = read_facts(run_path)
    now = DataFacts.of(data)
    if found.facts is None:  # a damaged one is left for the assessment (moved aside first)
        if found.state == MISSING:
            write_facts(run_path, now)
        return None
    changed = found.facts.differences(now)
    if not changed:
        return None
    return (f"the data differ from those the run started with ({', '.join(changed)} changed; "
            f"{DATAFACTS_FILE} keeps the first ones, which export uses): was data.root changed?")


__all__ = ["DATAFACTS_FILE", "SCHEMA", "DataFacts", "FactsProbe", "facts_path", "read_facts",
           "record_facts", "write_facts"]
