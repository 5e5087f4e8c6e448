"""The one damage assessment of a run directory: what is intact, what is lost, where a resume
restarts. ``prunetui check`` reports it (changing nothing); a resume acts on it (resume.py).

Rules, in order:

- Finished segments are taken in plan order up to the first whose final checkpoint is damaged
  or missing (``first_bad``); a missing one is lost (rather than not trained yet) when a later
  one exists or its sidecar does (the sidecar is written first).
- A ``rewind-K.pt`` still needed by a segment from ``first_bad`` on that is damaged or missing
  moves the restart back to that replicate's dense round (``done``).
- ``resume.pt`` continues the segment at ``done`` when it is intact and belongs to it.
- The metric files must hold what the restart state recorded (``offsets``).
- ``datafacts.json`` damaged, or missing though its sidecar exists (written first), is lost
  (``facts_loss``): nothing is retrained, a resume rewrites it from the data it decodes, and
  until then export decodes the training set again. Missing without a sidecar is a run from
  before the file: nothing lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prunetui.config import rewind_iteration
from prunetui.fileio import DAMAGED, MISSING, recorded_digests, sidecar
from prunetui.integrity.reader import CheckpointReader, Probe
from prunetui.results import segment_label
from prunetui.segments import Segment, round_owners
from prunetui.store.checkpoint import WEIGHTS_KEY, SegmentCheckpoint, StoreOffsets
from prunetui.store.datafacts import FactsProbe, read_facts
from prunetui.store.layout import RunDir


def label(seg: Segment, segments: Sequence[Segment] = ()) -> str:
    """``round 3 keep``; ``rep 2 round 3 keep`` when ``segments`` has several replicates."""
    replicates = 1 + max((s.replicate for s in segments), default=0)
    return segment_label(*seg.key, replicates)


@dataclass(frozen=True)
class Loss:
    """A damaged or missing file that costs work, and what it costs."""

    path: Path
    state: str  # DAMAGED or MISSING
    cost: str  # e.g. "round 1 keep and the 4 finished segments after it will be retrained"


@dataclass
class Assessment:
    run: RunDir
    segments: list[Segment]
    reader: CheckpointReader
    first_bad: int  # first segment whose final checkpoint is not intact (or not there yet)
    done: int  # segments [0, done) are kept; training restarts at segments[done]
    later: int  # final checkpoints on disk after first_bad
    final_loss: Loss | None = None
    rewind_loss: Loss | None = None
    resume: SegmentCheckpoint | None = None  # resume.pt, when it continues segments[done]
    resume_loss: Loss | None = None
    facts: FactsProbe | None = None  # datafacts.json as read
    facts_loss: Loss | None = None
    offsets: StoreOffsets = field(default_factory=StoreOffsets)

    @property
    def restart(self) -> str:
        """Where a resume restarts, in words (the same in check and in the resume's log); empty
        when every segment is finished."""
        if self.done >= len(self.segments):
            return ""
        seg = self.segments[self.done]
        where = "where resume.pt left it" if self.resume is not None else "from its start"
        return f"{label(seg, self.segments)}, {where}"

    def final(self, index: int) -> Probe:
        return self.reader.segment(self.final_path(self.segments[index]))

    def final_path(self, seg: Segment) -> Path:
        return self.run.segment_checkpoint(*seg.key)

    def started(self, replicate: int) -> bool:
        return any(s.replicate == replicate for s in self.segments[:self.done])

    def needed(self, replicate: int) -> bool:
        return any(s.replicate == replicate for s in self.segments[self.done:])

    def needs_rewind(self, replicate: int, k: int) -> bool:
        """Whether a segment not yet trained (from first_bad on) rewinds to iteration k."""
        return any(s.replicate == replicate and s.round > 0 and rewind_iteration(s.scheme) == k
                   for s in self.segments[self.first_bad:])

    def kept_records(self, kind: str) -> list[dict] | None:
        """Rows ("metrics") or sparsity records ("sparsity") kept in the checkpoints up to the
        restart state; None when a checkpoint predates keeping them."""
        states = [self.final(i).checkpoint for i in range(self.done)]
        if self.resume is not None:
            states.append(self.resume)
        records: list[dict] = []
        for state in states:
            value = (state.rows if kind == "metrics" else state.sparsity) if state else None
            if value is None:
                return None
            records.extend(value if isinstance(value, list) else [value])
        return records


def assess(run: RunDir, segments: Sequence[Segment], rewind_ks: Sequence[int],
           reader: CheckpointReader | None = None) -> Assessment:
    """Assess ``run`` against its plan; reads each checkpoint at most once, changes nothing."""
    segments = list(segments)
    reader = reader or CheckpointReader()
    first_bad = _first_bad(run, segments, reader)
    later = sum(run.segment_checkpoint(*s.key).exists() for s in segments[first_bad + 1:])
    found = Assessment(run, segments, reader, first_bad, first_bad, later)
    found.final_loss = _final_loss(found)
    found.rewind_loss = _rewind_loss(found, rewind_ks)
    _keep_tensors_for(found)
    found.resume, found.resume_loss = _resume_state(found)
    found.offsets = _offsets(found)
    found.facts = read_facts(run.path)
    found.facts_loss = facts_loss(found.facts)
    return found


def _first_bad(run: RunDir, segments: list[Segment], reader: CheckpointReader) -> int:
    """First segment without an intact final checkpoint. Loading drops the tensors of segments
    a later one supersedes (a resume needs only each scheme's newest)."""
    holders: dict[tuple[int, str], Path] = {}
    schemes = [s.scheme for s in segments if s.round > 0]
    for index, seg in enumerate(segments):
        path = run.segment_checkpoint(*seg.key)
        if not reader.segment(path).ok:
            return index
        for owner in round_owners(seg.scheme, dict.fromkeys(schemes)):
            previous = holders.get((seg.replicate, owner))
            holders[(seg.replicate, owner)] = path
            if previous is not None and previous not in holders.values():
                reader.forget_tensors(previous)
    return len(segments)


def _keep_tensors_for(found: Assessment) -> None:
    """Segments of replicates before the restart replicate are never loaded again for their
    weights: drop them (their outcome and rows stay)."""
    finished = found.done >= len(found.segments)
    keep_rep = -1 if finished else found.segments[found.done].replicate
    for index in range(min(found.first_bad, len(found.segments))):
        seg = found.segments[index]
        if seg.replicate != keep_rep or index >= found.done:
            found.reader.forget_tensors(found.final_path(seg))


def _final_loss(found: Assessment) -> Loss | None:
    if found.first_bad >= len(found.segments):
        return None
    seg = found.segments[found.first_bad]
    path = found.final_path(seg)
    probe = found.final(found.first_bad)
    deleted = probe.state == MISSING and (found.later or sidecar(path).exists())
    if probe.state != DAMAGED and not deleted:
        return None  # not trained yet
    after = f" and the {found.later} finished segments after it" if found.later else ""
    return Loss(path, DAMAGED if probe.state == DAMAGED else MISSING,
                f"{label(seg, found.segments)}{after} will be retrained")


def _rewind_loss(found: Assessment, rewind_ks: Sequence[int]) -> Loss | None:
    """A rewind point still needed but damaged: retrain that replicate's dense round."""
    wanted = {k for k in rewind_ks if k}
    for index, seg in enumerate(found.segments[:found.first_bad]):
        if seg.round != 0:
            continue
        for k in sorted(k for k in wanted if found.needs_rewind(seg.replicate, k)):
            path = found.run.rewind_checkpoint(seg.replicate, k)
            probe = found.reader.tensors(path, WEIGHTS_KEY)
            if probe.ok:
                continue
            found.done = index
            return Loss(path, DAMAGED if path.exists() else MISSING,
                        f"rewinding needs it, so {label(seg, found.segments)} and the segments "
                        "after it will be retrained")
    return None


FACTS_COST = "rewritten from the training data"


def facts_loss(probe: FactsProbe) -> Loss | None:
    """A damaged ``datafacts.json``, or one deleted after it was written; retrains nothing."""
    if probe.ok or (probe.state == MISSING and not sidecar(probe.path).exists()):
        return None
    return Loss(probe.path, probe.state, FACTS_COST)


def resume_lost(found: Assessment) -> str:
    """What a damaged or deleted resume.pt costs."""
    natural = found.final_loss is None or found.final_loss.state == MISSING
    natural = natural and found.rewind_loss is None
    seg = found.segments[found.done] if natural and found.done < len(found.segments) else None
    where = f"; {label(seg, found.segments)} restarts from its start" if seg is not None else ""
    return f"the training since the last finished segment is lost{where}"


def _resume_state(found: Assessment) -> tuple[SegmentCheckpoint | None, Loss | None]:
    path = found.run.resume_checkpoint()
    seg = found.segments[found.done] if found.done < len(found.segments) else None
    if not path.exists():
        if sidecar(path).exists() and seg is not None:
            return None, Loss(path, MISSING, resume_lost(found))
        return None, None
    probe = found.reader.segment(path)
    if not probe.ok:
        return None, Loss(path, probe.state, resume_lost(found))
    checkpoint = probe.checkpoint
    matches = seg is not None and checkpoint is not None and checkpoint.segment == seg.key
    return (checkpoint if matches else None), None


def _offsets(found: Assessment) -> StoreOffsets:
    """What the metric files must hold at the restart state."""
    if found.resume is not None:
        return found.resume.store
    if found.done > 0:
        checkpoint = found.final(found.done - 1).checkpoint
        if checkpoint is not None:
            return checkpoint.store
    return StoreOffsets()


@dataclass(frozen=True)
class InitVerdict:
    """``init.pt`` of one replicate: whether it is lost, and whether θ0 can be restored."""

    damaged: bool  # damaged, or missing though the replicate had started
    needed: bool  # the replicate still has segments to train
    confirmable: bool  # a recorded digest can confirm θ0 regenerated from the seed


def init_verdict(found: Assessment, replicate: int, probe: Probe) -> InitVerdict:
    path = found.run.init_checkpoint(replicate)
    damaged = not probe.ok and (path.exists() or sidecar(path).exists()
                                or found.started(replicate))
    return InitVerdict(damaged, found.needed(replicate), bool(recorded_digests(path)))
