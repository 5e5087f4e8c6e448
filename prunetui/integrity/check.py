"""``prunetui check``: every file of a run with its state and what its damage costs, from the
same assessment a resume acts on (assess.py), so both name the same restart point. Changes
nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prunetui.config import Config
from prunetui.fileio import DAMAGED, INTACT, MISSING, UNVERIFIED, sidecar, verify
from prunetui.integrity.assess import Assessment, assess, init_verdict, label, resume_lost
from prunetui.integrity.restore import config_of
from prunetui.integrity.resume import KINDS, jsonl_matches, jsonl_path
from prunetui.segments import plan, rewind_iterations
from prunetui.store.checkpoint import THETA0_KEY, WEIGHTS_KEY
from prunetui.store.jsonl import LineProblem
from prunetui.store.layout import CONFIG_FILE, RunDir
from prunetui.store.status import DAMAGED_MESSAGE, STATUS_FILE

ON_RESUME = " on resume"


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
    restart: str = ""  # where a resume restarts (empty without a usable config)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def damaged(self) -> list[FileCheck]:
        return [f for f in self.files if not f.ok]


def check_run(run: RunDir) -> CheckReport:
    """Verify every file of ``run`` and say what each damage costs; changes nothing."""
    report = CheckReport(run)
    cfg = _check_config(report)
    _check_status(report)
    if cfg is None:
        _check_jsonl(report, None)
        return report
    found = assess(run, plan(cfg), rewind_iterations(cfg.prune.schemes))
    report.restart = found.restart
    _check_replicates(report, cfg, found)
    _check_finals(report, found)
    _check_resume(report, found)
    _check_jsonl(report, found)
    _check_facts(report, found)
    report.set_aside = [run.relative(p) for p in run.set_aside()]
    return report


def _check_config(report: CheckReport) -> Config | None:
    run = report.run
    cfg, problem = config_of(run)
    state = verify(run.config_path)
    if problem or state == DAMAGED:
        fix = ("restored from the copy in the checkpoints" + ON_RESUME if cfg is not None else
               "no copy in any checkpoint: the run cannot be resumed; report still works")
        state = MISSING if not run.config_path.exists() else DAMAGED
        report.files.append(FileCheck(CONFIG_FILE, state, fix))
    else:
        report.files.append(FileCheck(CONFIG_FILE, state))
    return cfg


def _check_status(report: CheckReport) -> None:
    run = report.run
    state = verify(run.status_path)
    if state == DAMAGED or run.read_status().message == DAMAGED_MESSAGE:
        report.files.append(FileCheck(STATUS_FILE, DAMAGED, "the run reads as interrupted; a "
                                      "resume rewrites it (a finished run is only re-checked, "
                                      "nothing retrained)"))
    elif state != MISSING:
        report.files.append(FileCheck(STATUS_FILE, state))


def _check_finals(report: CheckReport, found: Assessment) -> None:
    run, segments = report.run, found.segments
    for index, seg in enumerate(segments):
        path = found.final_path(seg)
        if index > found.first_bad and not path.exists() and not sidecar(path).exists():
            continue  # not trained yet
        probe = found.final(index)
        if index == found.first_bad and found.final_loss is None:
            continue  # not trained yet
        cost = ""
        if index == found.first_bad and found.final_loss is not None:
            cost = found.final_loss.cost + ON_RESUME
        elif not probe.ok:
            cost = f"{label(seg, segments)} will be retrained{ON_RESUME}"
        elif found.done <= index < found.first_bad:
            cost = f"intact, but retrained{ON_RESUME} (restart at {found.restart})"
        report.files.append(FileCheck(run.relative(path), probe.state, cost))
        if index > found.first_bad:
            found.reader.forget_tensors(path)


def _check_replicates(report: CheckReport, cfg: Config, found: Assessment) -> None:
    run = report.run
    for rep in range(cfg.train.replicates):
        _check_init(report, found, rep)
        for k in rewind_iterations(cfg.prune.schemes):
            path = run.rewind_checkpoint(rep, k)
            if not path.exists() and not sidecar(path).exists():
                continue
            probe = found.reader.tensors(path, WEIGHTS_KEY)
            cost = ""
            if found.rewind_loss is not None and found.rewind_loss.path == path:
                cost = found.rewind_loss.cost + ON_RESUME
            elif not probe.ok and found.needs_rewind(rep, k):
                dense = next(s for s in found.segments if s.replicate == rep and s.round == 0)
                cost = (f"rewinding needs it: {label(dense, found.segments)} and the segments "
                        f"after it will be retrained{ON_RESUME}")
            elif not probe.ok:
                cost = "not needed any more (the rewind rounds that use it are finished)"
            report.files.append(FileCheck(run.relative(path), probe.state, cost))


def _check_init(report: CheckReport, found: Assessment, rep: int) -> None:
    run = report.run
    path = run.init_checkpoint(rep)
    probe = found.reader.tensors(path, THETA0_KEY)
    verdict = init_verdict(found, rep, probe)
    if probe.ok or not verdict.damaged:
        if probe.state != MISSING:
            report.files.append(FileCheck(run.relative(path), probe.state))
        return
    if not verdict.needed:
        cost = f"replicate {rep + 1} is finished and does not need it"
    elif verdict.confirmable:
        cost = "regenerated from the seed on resume, if it matches its recorded checksum"
    else:
        cost = (f"no checksum to confirm a regenerated one: replicate {rep + 1} cannot be "
                "continued (report of finished rounds still works)")
    report.files.append(FileCheck(run.relative(path), probe.state, cost))


def _check_resume(report: CheckReport, found: Assessment) -> None:
    path = report.run.resume_checkpoint()
    if not path.exists() and not sidecar(path).exists():
        return
    probe = found.reader.segment(path)
    cost = resume_lost(found) if not probe.ok else ""
    report.files.append(FileCheck(report.run.relative(path), probe.state, cost))


def _lines_cost(problems: Sequence[LineProblem], limit: int = 3) -> str:
    shown = ", ".join(f"line {p.line} {p.reason}" for p in problems[:limit])
    more = f" and {len(problems) - limit} more" if len(problems) > limit else ""
    return shown + more


def _check_jsonl(report: CheckReport, found: Assessment | None) -> None:
    run = report.run
    offsets = found.offsets if found is not None and (found.done or found.resume) else None
    for kind in KINDS:
        path = jsonl_path(run, kind)
        _, problems = run.metrics_checked() if kind == "metrics" else run.sparsity_checked()
        recorded = offsets is not None and offsets.digest(kind) is not None
        if not path.exists():
            if offsets is not None and offsets.offset(kind):
                report.files.append(FileCheck(path.name, MISSING, "rebuilt from the checkpoints "
                                              "on resume; report shows nothing until then"))
            continue
        prefix_ok = offsets is None or jsonl_matches(path, offsets, kind)
        if not problems and prefix_ok:
            report.files.append(FileCheck(path.name, INTACT if recorded else UNVERIFIED))
            continue
        if problems:
            where, shown = _lines_cost(problems), "report and the app skip the damaged lines"
        else:
            short = path.stat().st_size < offsets.offset(kind)
            where = ("shorter than its checkpoints recorded" if short else
                     "differs from the digest in the checkpoints")
            shown = "report shows what is left" if short else "report may show wrong numbers"
        fix = f"{shown}; rebuilt from the checkpoints on resume" if recorded else shown
        report.files.append(FileCheck(path.name, DAMAGED, f"{where}: {fix}"))


def _check_facts(report: CheckReport, found: Assessment) -> None:
    """``datafacts.json``: listed when it exists or its sidecar does (older runs have none)."""
    loss = found.facts_loss
    if loss is not None:
        report.files.append(FileCheck(report.run.relative(loss.path), loss.state,
                                      f"{loss.cost}{ON_RESUME}; until then export decodes the "
                                      "training set again (data.root as it was)"))
        return
    probe = found.facts
    if probe is not None and probe.state != MISSING:
        report.files.append(FileCheck(report.run.relative(probe.path), probe.state))
