"""Damage in a run directory: find it, say what it costs, and fall back to the newest intact state.

Every checkpoint and run file has a SHA-256 sidecar (store.write_checked); metrics.jsonl and
sparsity.jsonl are append-only, so each checkpoint records the digest of their prefix up to its
offset, and each final segment checkpoint keeps its segment's rows, sparsity record and the
config text. From these a resume can:

- move a damaged file aside (``<name>.damaged-<time>``, never deleted);
- restart the segment in progress when ``resume.pt`` is damaged;
- retrain from the first damaged (or missing) final segment checkpoint on (training is
  deterministic, so the metrics end identical);
- retrain the replicate's dense round when a ``rewind-K.pt`` still needed is damaged;
- rebuild metrics.jsonl / sparsity.jsonl from the checkpoints, and config.toml from its copy;
- regenerate ``init.pt`` from the seed when it matches the recorded digest (experiment.py).

:func:`check_run` reports the same without changing anything (``prunetui check``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prunetui import store
from prunetui.store import DAMAGED, INTACT, MISSING, UNVERIFIED, RunDir


class SegmentLike(Protocol):
    replicate: int
    round: int
    scheme: str

    @property
    def key(self) -> tuple[int, int, str]: ...


def label(seg: SegmentLike, segments: Sequence[SegmentLike] = ()) -> str:
    """``round 3 keep``; ``rep 2 round 3 keep`` when ``segments`` has several replicates."""
    from prunetui.results import segment_label

    replicates = 1 + max((s.replicate for s in segments), default=0)
    return segment_label(seg.replicate, seg.round, seg.scheme, replicates)


def _natural(segments: Sequence[SegmentLike], final_path: Callable[[SegmentLike], Path]
             ) -> int:
    """Where a resume would start were nothing damaged: the first segment without its file."""
    return next((i for i, s in enumerate(segments) if not final_path(s).exists()), len(segments))


def file_state(path: Path, load: Callable[[Path], Any] | None = store.load_checkpoint) -> str:
    """INTACT / DAMAGED / MISSING, or UNVERIFIED (no sidecar) for a file that still loads."""
    state = store.verify(path)
    if state == UNVERIFIED and load is not None:
        try:
            load(path)
        except store.StoreError:
            return DAMAGED
    return state


def _rel(run: RunDir, path: Path) -> str:
    try:
        return str(path.relative_to(run.path))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------
# Resume


@dataclass
class ResumePlan:
    done: int  # segments [0, done) are finished and intact
    resume: dict[str, Any] | None  # state inside segments[done], if any
    offsets: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # one line per loss or repair


def _moved(run: RunDir, path: Path, why: str) -> str:
    target = store.move_aside(path)
    where = f"; moved aside to {_rel(run, target)}" if target else ""
    return f"{_rel(run, path)} {why}{where}"


def _first_unfinished(run: RunDir, segments: Sequence[SegmentLike],
                      final_path: Callable[[SegmentLike], Path], notes: list[str]) -> int:
    for index, seg in enumerate(segments):
        path = final_path(seg)
        state = file_state(path)
        if state in (INTACT, UNVERIFIED):
            continue
        later = sum(final_path(s).exists() for s in segments[index + 1:])
        # The sidecar is written first: one without its file means the file was deleted.
        if state == DAMAGED or later or store.sidecar(path).exists():
            why = "is damaged" if state == DAMAGED else "is missing"
            after = f" and the {later} finished segments after it" if later else ""
            notes.append(_moved(run, path, why) + f": {label(seg, segments)}{after} will be "
                         "retrained")
        return index
    return len(segments)


def _rewind_fallback(run: RunDir, segments: Sequence[SegmentLike], done: int,
                     rewind_ks: Sequence[int], notes: list[str]) -> int:
    """A rewind point still needed but damaged: retrain that replicate's dense round."""
    from prunetui.config import rewind_iteration

    for index, seg in enumerate(segments):
        if index >= done:
            break
        if seg.round != 0:
            continue
        todo = [s for s in segments[done:] if s.replicate == seg.replicate and s.round > 0]
        needed = {rewind_iteration(s.scheme) for s in todo} & {k for k in rewind_ks if k}
        for k in sorted(needed):
            path = run.replicate_dir(seg.replicate) / f"rewind-{k}.pt"
            if file_state(path) in (INTACT, UNVERIFIED):
                continue
            why = "is damaged" if path.exists() else "is missing"
            notes.append(_moved(run, path, why) + f": rewinding needs it, so "
                         f"{label(seg, segments)} and "
                         "the segments after it will be retrained")
            return index
    return done


def _resume_lost(seg: SegmentLike | None, segments: Sequence[SegmentLike]) -> str:
    where = f"; {label(seg, segments)} restarts from its start" if seg is not None else ""
    return f"the training since the last finished segment is lost{where}"


def _load_resume(run: RunDir, seg: SegmentLike | None, natural: bool,
                 segments: Sequence[SegmentLike], notes: list[str]) -> dict[str, Any] | None:
    """resume.pt if it is intact and belongs to ``seg``; ``natural``: no fallback went further
    back than resume.pt's own segment (else that fallback's note says what restarts)."""
    path = run.resume_checkpoint()
    lost = _resume_lost(seg if natural else None, segments)
    if not path.exists():
        if store.sidecar(path).exists() and seg is not None:
            notes.append(f"{_rel(run, path)} is missing: {lost}")
            store.move_aside(store.sidecar(path))
        return None
    try:
        state = store.load_checkpoint(path)
        matches = tuple(state["segment"]) == seg.key if seg is not None else False
    except store.DamagedFile:
        notes.append(_moved(run, path, "is damaged") + f": {lost}")
        return None
    except (store.StoreError, KeyError, TypeError):
        return None
    return state if matches else None


def _jsonl_ok(path: Path, offsets: dict[str, Any], key: str) -> bool:
    size, digest = offsets[f"{key}_offset"], offsets.get(f"{key}_sha256")
    if digest is None:  # written before checksums: only the length can be checked
        return size == 0 or (path.exists() and path.stat().st_size >= size)
    return store.prefix_digest(path, size) == digest


def _rebuild(run: RunDir, path: Path, records: list[dict[str, Any]] | None,
             offsets: dict[str, Any], key: str, notes: list[str]) -> bool:
    """Rewrite a damaged JSON-lines file from the records kept in checkpoints."""
    if records is None:
        return False
    data = store.jsonl_bytes(records)
    if len(data) != offsets[f"{key}_offset"] or \
            store.sha256(data) != offsets.get(f"{key}_sha256", store.sha256(data)):
        return False
    kept = store.move_aside(path)
    store.atomic_write(path, lambda fh: fh.write(data))
    copy = " (the damaged copy is kept beside it)" if kept else ""
    notes.append(f"{path.name} was {'damaged' if kept else 'missing'}: rebuilt from the "
                 f"checkpoints{copy}, nothing lost")
    return True


def _kept_records(run: RunDir, segments: Sequence[SegmentLike], done: int,
                  final_path: Callable[[SegmentLike], Path], resume: dict[str, Any] | None,
                  field_name: str) -> list[dict[str, Any]] | None:
    records: list[dict[str, Any]] = []
    states = [store.load_checkpoint(final_path(s)) for s in segments[:done]]
    if resume is not None:
        states.append(resume)
    for state in states:
        value = state.get(field_name)
        if value is None:  # a checkpoint from before rows were kept in it
            return None
        records.extend(value if isinstance(value, list) else [value])
    return records


START = {"metrics_offset": 0, "sparsity_offset": 0, "elapsed_s": 0.0}


def plan_resume(run: RunDir, segments: Sequence[SegmentLike],
                final_path: Callable[[SegmentLike], Path],
                rewind_ks: Sequence[int] = ()) -> ResumePlan:
    """Where a resume starts, after moving damaged files aside and repairing the metric files.

    The metric files end cut back (or rebuilt) to exactly what the chosen state had seen.
    """
    notes: list[str] = []
    done = _first_unfinished(run, segments, final_path, notes)
    done = _rewind_fallback(run, segments, done, rewind_ks, notes)
    natural = done == _natural(segments, final_path)
    resume = _load_resume(run, segments[done] if done < len(segments) else None, natural,
                          segments, notes)
    offsets = dict(START)
    if resume is not None:
        offsets = resume["store"]
    elif done > 0:
        offsets = store.load_checkpoint(final_path(segments[done - 1]))["store"]
    for key, path, field_name in (("metrics", run.metrics_path, "rows"),
                                  ("sparsity", run.sparsity_path, "sparsity")):
        if _jsonl_ok(path, offsets, key):
            continue
        records = _kept_records(run, segments, done, final_path, resume, field_name)
        if not _rebuild(run, path, records, offsets, key, notes):
            # Nothing to rebuild from (a run from before checksums): start over, keep the copy.
            notes.append(_moved(run, path, "is damaged and cannot be rebuilt") +
                         ": the whole run will be retrained")
            store.move_aside(run.metrics_path)
            store.move_aside(run.sparsity_path)
            return ResumePlan(0, None, dict(START), notes)
    store.truncate(run.metrics_path, offsets["metrics_offset"])
    store.truncate(run.sparsity_path, offsets["sparsity_offset"])
    return ResumePlan(done, resume, offsets, notes)


# ---------------------------------------------------------------------------------------------
# Config


def restore_config(run: RunDir) -> str | None:
    """Put back a damaged or deleted config.toml from the copy in a checkpoint.

    Returns a one-line note when it did; None when config.toml is fine or nothing holds a copy
    (the caller then reports the config error as usual).
    """
    state = store.verify(run.config_path)
    if state == INTACT:
        return None
    if state == UNVERIFIED:
        try:
            run.config()
            return None
        except (ValueError, OSError):  # ConfigError, or bytes that are not UTF-8
            pass
    accepted = store.recorded_digests(run.config_path)
    for path in _checkpoints_newest_first(run):
        try:
            text = store.load_checkpoint(path).get("config")
        except store.StoreError:
            continue
        if isinstance(text, str) and (accepted is None or
                                      store.sha256(text.encode("utf-8")) in accepted):
            why = "was missing" if state == MISSING else "was damaged"
            store.move_aside(run.config_path)
            store.atomic_write_text(run.config_path, text, checksum=True)
            return f"{store.CONFIG_FILE} {why}: restored from {_rel(run, path)}"
    return None


def _checkpoints_newest_first(run: RunDir) -> list[Path]:
    found = [p for p in run.checkpoints.rglob("*.pt")] if run.checkpoints.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


# ---------------------------------------------------------------------------------------------
# init.pt


def regenerate_init(run: RunDir, path: Path, data: bytes | memoryview, replicate: int, needed: bool,
                    problem: str) -> str:
    """Replace a damaged or missing init.pt by ``data`` (theta0 regenerated from the seed) when
    its recorded digest confirms it; otherwise stop, saying what is lost and what still works."""
    accepted = store.recorded_digests(path)
    if accepted is not None and store.sha256(data) in accepted:
        what = "is damaged" if path.exists() else "is missing"
        store.move_aside(path)
        store.write_checked(path, data)
        return (f"{_rel(run, path)} {what}: regenerated from the seed and confirmed by its "
                "checksum, nothing lost")
    if not needed:
        return (f"{_rel(run, path)} {'is damaged' if path.exists() else 'is missing'} and cannot "
                f"be confirmed; replicate {replicate + 1} is finished and does not need it")
    raise store.CannotResume(
        f"{_rel(run, path)} {'is damaged' if path.exists() else 'is missing'} ({problem}) and the "
        f"starting weights regenerated from the seed cannot be confirmed against a recorded "
        f"checksum, so replicate {replicate + 1} cannot be continued. The finished rounds are "
        f"intact: 'prunetui report {run.path}' shows them, 'prunetui export {run.path} OUT' "
        f"writes any of them as a model file and 'prunetui check {run.path}' lists every "
        f"file. To get the remaining rounds, start the same experiment afresh: "
        f"prunetui run {run.config_path}")


# ---------------------------------------------------------------------------------------------
# prunetui check


@dataclass(frozen=True)
class FileCheck:
    path: str  # relative to the run directory
    state: str  # INTACT, DAMAGED, MISSING or UNVERIFIED (no checksum, but it loads)
    cost: str = ""  # what the damage costs, and what a resume does about it

    @property
    def ok(self) -> bool:
        return self.state in (INTACT, UNVERIFIED)


@dataclass
class CheckReport:
    run: RunDir
    files: list[FileCheck] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)  # copies moved aside by earlier resumes

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def damaged(self) -> list[FileCheck]:
        return [f for f in self.files if not f.ok]


def _config_of(run: RunDir) -> tuple[Any, str]:
    """The run's Config (from config.toml, else from a checkpoint's copy) and a problem."""
    import tomllib

    from prunetui.config import from_dict

    try:
        return run.config(), ""
    except (ValueError, OSError) as err:
        problem = str(err).splitlines()[0]
    for path in _checkpoints_newest_first(run):
        try:
            text = store.load_checkpoint(path).get("config")
            if isinstance(text, str):
                return from_dict(tomllib.loads(text), source=str(path)), problem
        except (store.StoreError, ValueError):
            continue
    return None, problem


def _lines_cost(problems: Sequence[store.LineProblem], limit: int = 3) -> str:
    shown = ", ".join(f"line {p.line} {p.reason}" for p in problems[:limit])
    more = f" and {len(problems) - limit} more" if len(problems) > limit else ""
    return shown + more


def check_run(run: RunDir) -> CheckReport:
    """Verify every file of ``run`` and say what each damage costs; changes nothing."""
    from prunetui.experiment import plan as plan_segments

    report = CheckReport(run)
    add = report.files.append
    cfg, problem = _config_of(run)
    config_state = store.verify(run.config_path)
    if problem or config_state == DAMAGED:
        fix = ("restored from the copy in the checkpoints on resume" if cfg is not None else
               "no copy in any checkpoint: the run cannot be resumed; report still works")
        state = MISSING if not run.config_path.exists() else DAMAGED
        add(FileCheck(store.CONFIG_FILE, state, fix))
    else:
        add(FileCheck(store.CONFIG_FILE, config_state))
    status_state = store.verify(run.status_path)
    if status_state == DAMAGED or run.read_status().message.endswith("is damaged"):
        add(FileCheck(store.STATUS_FILE, DAMAGED, "the run reads as interrupted; a resume "
                      "rewrites it (a finished run is only re-checked, nothing retrained)"))
    elif status_state != MISSING:
        add(FileCheck(store.STATUS_FILE, status_state))
    if cfg is None:
        _check_jsonl(report, None, [])
        return report

    final_path = report_final_path(run)
    segments = plan_segments(cfg)
    states = {seg.key: file_state(final_path(seg)) for seg in segments}
    first_bad = next((i for i, s in enumerate(segments)
                      if states[s.key] in (DAMAGED, MISSING)), len(segments))
    later = sum(final_path(s).exists() for s in segments[first_bad + 1:])
    _check_replicates(report, cfg, segments, first_bad)
    for index, seg in enumerate(segments):
        path, state = final_path(seg), states[seg.key]
        if state == MISSING and (index > first_bad or not (later or
                                                            store.sidecar(path).exists())):
            continue  # not trained yet
        cost = ""
        if state not in (INTACT, UNVERIFIED):
            after = f" and the {later} finished segments after it" if later else ""
            cost = (f"{label(seg, segments)}{after} will be retrained on resume"
                    if index == first_bad else
                    f"{label(seg, segments)} will be retrained on resume")
        add(FileCheck(_rel(run, path), state, cost))
    _check_resume(report, segments, first_bad)
    _check_jsonl(report, _newest_offsets(run, segments, first_bad, final_path), segments)
    report.set_aside = sorted(_rel(run, p) for p in run.path.rglob("*.damaged-*")
                              if not p.name.endswith(store.SIDECAR))
    return report


def _check_replicates(report: CheckReport, cfg: Any, segments: Sequence[SegmentLike],
                      first_bad: int) -> None:
    from prunetui.config import rewind_iteration

    run = report.run
    ks = sorted({k for k in (rewind_iteration(s) for s in cfg.prune.schemes) if k})
    for rep in range(cfg.train.replicates):
        todo = [s for s in segments[first_bad:] if s.replicate == rep]
        started = any(s.replicate == rep for s in segments[:first_bad])
        init = run.replicate_dir(rep) / "init.pt"
        state = file_state(init)
        if state in (INTACT, UNVERIFIED) or (state == MISSING and not started and
                                            not store.sidecar(init).exists()):
            if state != MISSING:
                report.files.append(FileCheck(_rel(run, init), state))
        elif not todo:
            report.files.append(FileCheck(_rel(run, init), state, f"replicate {rep + 1} is "
                                          "finished and does not need it"))
        elif store.recorded_digests(init):
            report.files.append(FileCheck(_rel(run, init), state, "regenerated from the seed "
                                          "on resume, if it matches its recorded checksum"))
        else:
            report.files.append(FileCheck(_rel(run, init), state, "no checksum to confirm a "
                                          f"regenerated one: replicate {rep + 1} cannot be "
                                          "continued (report of finished rounds still works)"))
        for k in ks:
            path = run.replicate_dir(rep) / f"rewind-{k}.pt"
            state = file_state(path)
            if state == MISSING and not store.sidecar(path).exists():
                continue
            cost = ""
            if state in (DAMAGED, MISSING):
                needed = any(rewind_iteration(s.scheme) == k and s.round > 0 for s in todo)
                dense = next(s for s in segments if s.replicate == rep and s.round == 0)
                cost = (f"rewinding needs it: {label(dense, segments)} and the segments after "
                        "it will be retrained on resume" if needed else "not needed any more "
                        "(the rewind rounds that use it are finished)")
            report.files.append(FileCheck(_rel(run, path), state, cost))


def _check_resume(report: CheckReport, segments: Sequence[SegmentLike], first_bad: int) -> None:
    run = report.run
    path = run.resume_checkpoint()
    if not path.exists() and not store.sidecar(path).exists():
        return
    state = file_state(path)
    cost = ""
    if state in (DAMAGED, MISSING):
        natural = first_bad == _natural(segments, report_final_path(run))
        seg = segments[first_bad] if natural and first_bad < len(segments) else None
        cost = _resume_lost(seg, segments)
    report.files.append(FileCheck(_rel(run, path), state, cost))


def report_final_path(run: RunDir) -> Callable[[SegmentLike], Path]:
    return lambda seg: run.segment_checkpoint(seg.replicate, seg.round, seg.scheme)


def _newest_offsets(run: RunDir, segments: Sequence[SegmentLike], first_bad: int,
                    final_path: Callable[[SegmentLike], Path]) -> dict[str, Any] | None:
    """The store offsets of the state a resume would start from (what the files must hold)."""
    with _suppress_store_errors():
        state = store.load_checkpoint(run.resume_checkpoint())
        if first_bad < len(segments) and tuple(state["segment"]) == segments[first_bad].key:
            return state["store"]
    if first_bad == 0:
        return None
    with _suppress_store_errors():
        return store.load_checkpoint(final_path(segments[first_bad - 1]))["store"]
    return None


def _suppress_store_errors():
    import contextlib

    return contextlib.suppress(store.StoreError, KeyError, TypeError)


def _check_jsonl(report: CheckReport, offsets: dict[str, Any] | None,
                 segments: Sequence[SegmentLike]) -> None:
    run = report.run
    for key, path, read in (("metrics", run.metrics_path, run.metrics_checked),
                            ("sparsity", run.sparsity_path, run.sparsity_checked)):
        _, problems = read()
        prefix_ok = offsets is None or _jsonl_ok(path, offsets, key)
        if not path.exists():
            if offsets and offsets[f"{key}_offset"]:
                report.files.append(FileCheck(path.name, MISSING, "rebuilt from the checkpoints "
                                              "on resume; report shows nothing until then"))
            continue
        if not problems and prefix_ok:
            state = INTACT if offsets and offsets.get(f"{key}_sha256") else UNVERIFIED
            report.files.append(FileCheck(path.name, state))
            continue
        if problems:
            where, shown = _lines_cost(problems), "report and the app skip the damaged lines"
        else:
            short = path.stat().st_size < (offsets or {}).get(f"{key}_offset", 0)
            where = ("shorter than its checkpoints recorded" if short else
                     "differs from the digest in the checkpoints")
            shown = "report shows what is left" if short else "report may show wrong numbers"
        fix = (f"{shown}; rebuilt from the checkpoints on resume"
               if offsets and offsets.get(f"{key}_sha256") else shown)
        report.files.append(FileCheck(path.name, DAMAGED, f"{where}: {fix}"))
