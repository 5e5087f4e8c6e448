"""Checkpoint files and their schema, as typed records instead of string keys.

- :class:`SegmentCheckpoint`: a segment's state, written every epoch to ``resume.pt`` and, with
  its :class:`SegmentOutcome`, as the segment's final ``round-NN-<scheme>.pt``. Final ones also
  keep the segment's metric rows, its sparsity record and the config text, from which a resume
  rebuilds damaged run files.
- :class:`StoreOffsets`: where ``metrics.jsonl`` / ``sparsity.jsonl`` ended when the checkpoint
  was written, with the SHA-256 of each prefix.
- ``init.pt`` holds θ0 (:func:`save_theta0`) and ``rewind-K.pt`` the weights at iteration K.

Torch is imported lazily: readers of a run (the app, ``runs``, ``report``) never need it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prunetui.fileio import DamagedFile, StoreError, verify, write_checked
from prunetui.store.rows import MetricRow, SegmentKey, SparsityRecord

State = dict[str, Any]  # parameter name -> tensor
THETA0_KEY = "theta0"
WEIGHTS_KEY = "weights"


class CannotResume(StoreError):
    """Damage a resume cannot repair; the message says what is lost and what still works (it
    must not suggest the same resume again)."""


@dataclass(frozen=True)
class StoreOffsets:
    metrics_offset: int = 0
    sparsity_offset: int = 0
    metrics_sha256: str | None = None  # None: written before checksums (length check only)
    sparsity_sha256: str | None = None
    elapsed_s: float = 0.0

    def offset(self, kind: str) -> int:
        """``kind``: "metrics" or "sparsity"."""
        return self.metrics_offset if kind == "metrics" else self.sparsity_offset

    def digest(self, kind: str) -> str | None:
        return self.metrics_sha256 if kind == "metrics" else self.sparsity_sha256

    def to_dict(self) -> dict[str, Any]:
        return {"metrics_offset": self.metrics_offset, "sparsity_offset": self.sparsity_offset,
                "metrics_sha256": self.metrics_sha256, "sparsity_sha256": self.sparsity_sha256,
                "elapsed_s": self.elapsed_s}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StoreOffsets:
        return cls(int(raw["metrics_offset"]), int(raw["sparsity_offset"]),
                   raw.get("metrics_sha256"), raw.get("sparsity_sha256"),
                   float(raw["elapsed_s"]))


@dataclass(frozen=True)
class SegmentOutcome:
    """What a finished segment scored (at its early-stop iteration)."""

    remaining: float
    early_stop_iteration: int
    test_acc: float
    best_val_acc: float

    def to_dict(self) -> dict[str, Any]:
        return {"remaining": self.remaining, "early_stop_iteration": self.early_stop_iteration,
                "test_acc": self.test_acc, "best_val_acc": self.best_val_acc}


@dataclass
class SegmentCheckpoint:
    segment: SegmentKey
    weights: State
    masks: State  # bool tensors
    trainer: dict[str, Any]
    store: StoreOffsets
    rows: list[MetricRow] | None = None  # None: written before rows were kept
    sparsity: SparsityRecord | None = None
    config: str | None = None
    outcome: SegmentOutcome | None = None  # set in final checkpoints only

    def to_state(self) -> dict[str, Any]:
        """The dict saved with torch.save (keys in the order every release wrote them)."""
        state: dict[str, Any] = {"segment": list(self.segment), "weights": self.weights,
                                 "masks": self.masks, "trainer": self.trainer}
        if self.outcome is not None:
            state["result"] = self.outcome.to_dict()
        state.update(rows=self.rows, sparsity=self.sparsity, config=self.config,
                     store=self.store.to_dict())
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], path: Path) -> SegmentCheckpoint:
        try:
            seg = state["segment"]
            result = state.get("result")
            return cls(
                segment=(int(seg[0]), int(seg[1]), str(seg[2])), weights=state["weights"],
                masks=state["masks"], trainer=state["trainer"],
                store=StoreOffsets.from_dict(state["store"]), rows=state.get("rows"),
                sparsity=state.get("sparsity"), config=state.get("config"),
                outcome=SegmentOutcome(**result) if result is not None else None)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise DamagedFile(path, f"not a segment checkpoint ({err})") from err


def checkpoint_bytes(state: dict[str, Any]) -> memoryview:
    """``torch.save`` in memory: straight into a file it turns ENOSPC into an opaque
    RuntimeError from its zip writer, and we want the plain OSError to report a full disk."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer()


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    write_checked(path, checkpoint_bytes(state))


def save_segment(checkpoint: SegmentCheckpoint, path: Path) -> None:
    save_checkpoint(checkpoint.to_state(), path)


def theta0_bytes(theta0: State) -> memoryview:
    return checkpoint_bytes({THETA0_KEY: theta0})


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint after checking its digest; DamagedFile when it is not intact."""
    import torch

    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise StoreError(f"Checkpoint {path} is missing.") from err
    except OSError as err:
        raise DamagedFile(path, err.strerror or str(err)) from err
    if verify(path, data) == "damaged":
        raise DamagedFile(path, "checksum mismatch")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a bad archive; all mean damage
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "Weights only load failed" in str(err) or "weights_only" in reason:
            # Never pass on torch's advice to load it with weights_only=False: untrusted code.
            reason = "it holds Python objects other than tensors and plain data"
        elif isinstance(err, KeyError):  # the unpickler's view of bytes that are no pickle
            reason = "not a PyTorch file"
        raise DamagedFile(path, f"cannot be read: {reason}") from None
    if not isinstance(state, dict):
        raise DamagedFile(path, "not a checkpoint")
    return state


def load_segment(path: Path) -> SegmentCheckpoint:
    return SegmentCheckpoint.from_state(load_checkpoint(path), path)
