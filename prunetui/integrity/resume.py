"""A resume acts on the damage assessment: damaged files are moved aside (never deleted), the
metric files are rebuilt from the checkpoints where they do not match, and cut back to exactly
what the restart state had seen. Each loss or repair is said in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prunetui.fileio import (
    DAMAGED,
    atomic_write,
    move_aside,
    prefix_digest,
    sha256,
    sidecar,
    truncate,
)
from prunetui.integrity.assess import Assessment, Loss, assess
from prunetui.segments import Segment
from prunetui.store.checkpoint import SegmentCheckpoint, StoreOffsets
from prunetui.store.jsonl import jsonl_bytes
from prunetui.store.layout import RunDir

KINDS = ("metrics", "sparsity")


@dataclass
class ResumePlan:
    assessment: Assessment
    notes: list[str] = field(default_factory=list)  # one line per loss or repair

    @property
    def done(self) -> int:
        return self.assessment.done

    @property
    def resume(self) -> SegmentCheckpoint | None:
        return self.assessment.resume

    @property
    def offsets(self) -> StoreOffsets:
        return self.assessment.offsets


def jsonl_path(run: RunDir, kind: str) -> Path:
    return run.metrics_path if kind == "metrics" else run.sparsity_path


def jsonl_matches(path: Path, offsets: StoreOffsets, kind: str) -> bool:
    """Whether ``path`` starts with exactly what the checkpoint recorded."""
    size, digest = offsets.offset(kind), offsets.digest(kind)
    if digest is None:  # written before checksums: only the length can be checked
        return size == 0 or (path.exists() and path.stat().st_size >= size)
    return prefix_digest(path, size) == digest


def plan_resume(run: RunDir, segments: Sequence[Segment], rewind_ks: Sequence[int] = ()
                ) -> ResumePlan:
    """Where a resume starts, after moving damaged files aside and repairing the metric files.

    The metric files end cut back (or rebuilt) to exactly what the chosen state had seen.
    """
    plan = ResumePlan(assess(run, segments, rewind_ks))
    found = plan.assessment
    for loss in (found.final_loss, found.rewind_loss, found.resume_loss, found.facts_loss):
        if loss is not None:
            plan.notes.append(_set_aside(run, loss))
    for kind in KINDS:
        path = jsonl_path(run, kind)
        if jsonl_matches(path, found.offsets, kind):
            continue
        if not _rebuild(path, found.kept_records(kind), found.offsets, kind, plan.notes):
            return _start_over(run, path, plan)
    truncate(run.metrics_path, found.offsets.metrics_offset)
    truncate(run.sparsity_path, found.offsets.sparsity_offset)
    return plan


def _set_aside(run: RunDir, loss: Loss) -> str:
    """Move the lost file aside and say so (a deleted file's orphan sidecar goes aside too)."""
    why = "is damaged" if loss.state == DAMAGED else "is missing"
    if loss.path.exists():
        return _moved(run, loss.path, why) + f": {loss.cost}"
    if sidecar(loss.path).exists():
        move_aside(sidecar(loss.path))
    return f"{run.relative(loss.path)} {why}: {loss.cost}"


def _moved(run: RunDir, path: Path, why: str) -> str:
    target = move_aside(path)
    where = f"; moved aside to {run.relative(target)}" if target else ""
    return f"{run.relative(path)} {why}{where}"


def _rebuild(path: Path, records: list[dict] | None, offsets: StoreOffsets, kind: str,
             notes: list[str]) -> bool:
    """Rewrite a damaged JSON-lines file from the records kept in checkpoints."""
    if records is None:
        return False
    data = jsonl_bytes(records)
    digest = offsets.digest(kind)
    if len(data) != offsets.offset(kind) or (digest is not None and sha256(data) != digest):
        return False
    kept = move_aside(path)
    atomic_write(path, lambda fh: fh.write(data))
    copy = " (the damaged copy is kept beside it)" if kept else ""
    notes.append(f"{path.name} was {'damaged' if kept else 'missing'}: rebuilt from the "
                 f"checkpoints{copy}, nothing lost")
    return True


def _start_over(run: RunDir, path: Path, plan: ResumePlan) -> ResumePlan:
    """Nothing to rebuild from (a run from before checksums): start over, keep the copies."""
    plan.notes.append(_moved(run, path, "is damaged and cannot be rebuilt") +
                      ": the whole run will be retrained")
    move_aside(run.metrics_path)
    move_aside(run.sparsity_path)
    found = plan.assessment
    found.done, found.resume, found.offsets = 0, None, StoreOffsets()
    return plan
