"""The plan of a run: its fixed list of segments, and the dense round every scheme shares.

A run is a list of *segments* (replicate, round, scheme) trained in order. Round 0 is the dense
network, trained once per replicate and shared by every scheme: its results belong to every
scheme's curve (:func:`round_owners`). Torch-free: the app, sweeps and ``check`` plan runs too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prunetui.config import ConfigError, lr_rewind_iteration, rewind_iteration
from prunetui.store.rows import SegmentKey

if TYPE_CHECKING:
    from collections.abc import Iterable

    from prunetui.config import Config

DENSE = "dense"  # scheme label of round 0, shared by every scheme


@dataclass(frozen=True)
class Segment:
    replicate: int
    round: int
    scheme: str

    @property
    def key(self) -> SegmentKey:
        return (self.replicate, self.round, self.scheme)


def ordered_schemes(cfg: Config) -> list[str]:
    """Schemes in training order; with shared rewind masks, rewind must go first."""
    names = list(cfg.prune.schemes)
    if cfg.prune.mask_from == "rewind":
        names.remove("rewind")
        names.insert(0, "rewind")
    return names


def plan(cfg: Config) -> list[Segment]:
    segments = []
    for rep in range(cfg.train.replicates):
        segments.append(Segment(rep, 0, DENSE))
        for round_ in range(1, cfg.num_rounds + 1):
            segments.extend(Segment(rep, round_, s) for s in ordered_schemes(cfg))
    return segments


def segment_count(cfg: Config) -> int:
    """``len(plan(cfg))`` without building it."""
    return cfg.train.replicates * (1 + cfg.num_rounds * len(cfg.prune.schemes))


def total_iterations(cfg: Config, per_epoch: int) -> int:
    """Training iterations of one segment."""
    return cfg.train.epochs * per_epoch if cfg.train.epochs else cfg.train.iterations


def segment_iterations(scheme: str, full: int) -> int:
    """Training iterations of a segment of ``scheme`` when a full one has ``full``:
    ``lr-rewind:K`` replays the schedule from K to its end, ``full - K`` iterations (Renda et
    al. 2020); every other scheme, and the dense round, trains ``full``."""
    k = lr_rewind_iteration(scheme) or 0
    if k >= full:
        raise ConfigError("prune.schemes", scheme, f"K must be below the {full} iterations a "
                          "round trains")
    return full - k


def rewind_iterations(schemes: Iterable[str]) -> list[int]:
    """The K > 0 of every ``rewind:K`` scheme: iterations whose weights a run must save."""
    return sorted({k for k in (rewind_iteration(s) for s in schemes) if k})


def round_owners(scheme: str, schemes: Iterable[str]) -> tuple[str, ...]:
    """The schemes a segment's results belong to: the dense round starts every scheme's
    curve (all of ``schemes``); a pruned round belongs to its own scheme."""
    owners = tuple(schemes)
    return owners if scheme == DENSE and owners else (scheme,)
