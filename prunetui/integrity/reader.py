"""Checkpoints read once: each file is loaded (and its digest checked) at most once per resume
or check, and what a later step needs of it is kept.

A resume needs every finished segment's outcome, rows and offsets, but the weights and masks of
only the newest segment of each scheme (what the next round starts from). The reader keeps the
tensors only while ``keep`` says they may still be needed, so memory stays at a few checkpoints
however long the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prunetui.fileio import DAMAGED, INTACT, MISSING, UNVERIFIED, StoreError, recorded_digests
from prunetui.store.checkpoint import SegmentCheckpoint, load_checkpoint


@dataclass
class Probe:
    """One checkpoint file: its state and, when it loads, its content."""

    state: str  # INTACT, DAMAGED, MISSING or UNVERIFIED (no sidecar, but it loads)
    problem: str = ""
    checkpoint: SegmentCheckpoint | None = None
    tensors: dict | None = None  # init.pt's theta0 or rewind-K.pt's weights

    @property
    def ok(self) -> bool:
        return self.state in (INTACT, UNVERIFIED)


class CheckpointReader:
    """Loads checkpoint files, each at most once, and remembers the outcome."""

    def __init__(self) -> None:
        self._probes: dict[Path, Probe] = {}

    def segment(self, path: Path) -> Probe:
        """A segment checkpoint (final or resume.pt)."""
        return self._probe(path, lambda state: SegmentCheckpoint.from_state(state, path), None)

    def tensors(self, path: Path, key: str) -> Probe:
        """``init.pt`` (key ``theta0``) or ``rewind-K.pt`` (key ``weights``)."""
        return self._probe(path, None, key)

    def forget_tensors(self, path: Path) -> None:
        """Drop the weights, masks and optimizer state of a loaded segment (kept: its outcome,
        rows, sparsity record, offsets and config text)."""
        probe = self._probes.get(path)
        if probe is not None and probe.checkpoint is not None:
            probe.checkpoint.weights, probe.checkpoint.masks = {}, {}
            probe.checkpoint.trainer = {}

    def take(self, path: Path) -> Probe:
        """The probe of segment checkpoint ``path`` handed over (the reader forgets it, and its
        memory goes with it)."""
        self.segment(path)
        return self._probes.pop(path)

    def take_tensors(self, path: Path, key: str) -> Probe:
        """:meth:`tensors`, handed over like :meth:`take`."""
        self.tensors(path, key)
        return self._probes.pop(path)

    def _probe(self, path: Path, typed: Callable | None, key: str | None) -> Probe:
        if path in self._probes:
            return self._probes[path]
        probe = _load(path, typed, key)
        self._probes[path] = probe
        return probe


def _load(path: Path, typed: Callable | None, key: str | None) -> Probe:
    try:
        state = load_checkpoint(path)
        checkpoint = typed(state) if typed else None
        tensors = state.get(key) if key else None
        if key and not isinstance(tensors, dict):
            return Probe(DAMAGED, f"holds no {key!r}")
    except StoreError as err:
        if not path.exists():
            return Probe(MISSING, "missing")
        return Probe(DAMAGED, str(err))
    state_name = INTACT if recorded_digests(path) is not None else UNVERIFIED
    return Probe(state_name, checkpoint=checkpoint, tensors=tensors)
