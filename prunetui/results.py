"""Results derived from metrics.jsonl rows (pure Python: the app and reports need no torch).

Per (round, scheme, replicate) the early-stop iteration is the evaluation with the lowest
validation loss, and the test accuracy there is the reported result, as in the Lottery Ticket
paper. Replicates are then aggregated as mean and standard deviation.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prunetui.segments import DENSE, round_owners
from prunetui.stats import NO_INTERVAL, Paired, paired, summarize
from prunetui.store import (
    LineProblem,
    MetricRow,
    RunDir,
    SegmentKey,
    SegmentOutcome,
    segment_key,
)

if TYPE_CHECKING:
    from prunetui.config import Config


@dataclass(frozen=True)
class SegmentResult(SegmentOutcome):
    """What one segment scored (the outcome its final checkpoint keeps), which segment it is,
    and over how many evaluations."""

    replicate: int
    round: int
    scheme: str
    evaluations: int

    @property
    def key(self) -> SegmentKey:
        return (self.replicate, self.round, self.scheme)


@dataclass(frozen=True)
class RoundResult:
    """One row of the results table: a round and scheme, over replicates."""

    round: int
    scheme: str
    remaining: float
    test_acc: float  # mean over replicates
    test_acc_std: float
    early_stop_iteration: float
    best_val_acc: float
    replicates: int
    test_acc_half_width: float | None = None  # of the 95% t-interval (None: one replicate)
    test_acc_min: float = 0.0
    test_acc_max: float = 0.0


def segment_label(replicate: int, round_: int, scheme: str, replicates: int = 1) -> str:
    """How front ends name a segment: ``round 3 rewind`` (``rep 2 round 3 rewind``)."""
    prefix = f"rep {replicate + 1} " if replicates > 1 else ""
    return f"{prefix}round {round_} {scheme}"


def segment_result(rows: list[MetricRow]) -> SegmentResult:
    best = min(rows, key=lambda r: (r["val_loss"], r["iteration"]))
    first = rows[0]
    return SegmentResult(
        replicate=first["replicate"], round=first["round"], scheme=first["scheme"],
        remaining=first["remaining"], early_stop_iteration=best["iteration"],
        test_acc=best["test_acc"], best_val_acc=max(r["val_acc"] for r in rows),
        evaluations=len(rows),
    )


def segment_results(metrics: Iterable[MetricRow]) -> list[SegmentResult]:
    groups: dict[SegmentKey, list[MetricRow]] = defaultdict(list)
    for row in metrics:
        groups[segment_key(row)].append(row)
    return [segment_result(rows) for _, rows in sorted(groups.items(), key=lambda kv: kv[0])]


def round_results(metrics: Iterable[MetricRow]) -> list[RoundResult]:
    """Table rows sorted by round, then scheme (the dense round 0 first)."""
    groups: dict[tuple[int, str], list[SegmentResult]] = defaultdict(list)
    for seg in segment_results(metrics):
        groups[(seg.round, seg.scheme)].append(seg)
    rows = []
    for (round_, scheme), segs in sorted(groups.items()):
        accs = summarize([s.test_acc for s in segs])
        rows.append(RoundResult(
            round=round_, scheme=scheme,
            remaining=statistics.fmean(s.remaining for s in segs),
            test_acc=accs.mean, test_acc_std=accs.std,
            early_stop_iteration=statistics.fmean(s.early_stop_iteration for s in segs),
            best_val_acc=statistics.fmean(s.best_val_acc for s in segs),
            replicates=len(segs), test_acc_half_width=accs.half_width,
            test_acc_min=accs.minimum, test_acc_max=accs.maximum,
        ))
    return rows


def lottery_curves(rows: list[RoundResult]) -> dict[str, list[RoundResult]]:
    """Per scheme, its rounds in order, each curve starting at the shared dense round 0."""
    schemes = [s for s in dict.fromkeys(r.scheme for r in rows) if s != DENSE]
    curves: dict[str, list[RoundResult]] = {}
    for r in sorted(rows, key=lambda r: r.round):
        for owner in round_owners(r.scheme, schemes):
            curves.setdefault(owner, []).append(r)
    return curves


def format_acc(mean: float, half_width: float | None) -> str:
    """``97.12`` or, with replicates, ``97.12±0.65`` (the 95% t-interval's half-width; no
    space, so the results table fits 80 columns)."""
    text = f"{100 * mean:.2f}"
    return text if half_width is None else f"{text}±{100 * half_width:.2f}"


def format_range(low: float, high: float, replicates: int) -> str:
    """The min–max range over replicates (the Lottery Ticket paper's error bars)."""
    return f"{100 * low:.1f}–{100 * high:.1f}" if replicates > 1 else ""


# Short headers: the table must fit 80 columns. "test %" is the test accuracy at the early-stop
# iteration (lowest validation loss): the mean, ± the 95% t-interval with replicates, whose
# min–max is "range"; "best val %" the highest validation accuracy seen.
TABLE_HEADER = ("round", "scheme", "left %", "test %", "range", "stop it", "best val %")


def table_rows(rows: list[RoundResult]) -> list[tuple[str, ...]]:
    return [
        (str(r.round), r.scheme, f"{100 * r.remaining:.2f}",
         format_acc(r.test_acc, r.test_acc_half_width),
         format_range(r.test_acc_min, r.test_acc_max, r.replicates),
         f"{r.early_stop_iteration:.0f}", f"{100 * r.best_val_acc:.2f}")
        for r in rows
    ]


def table_caption(rows: list[RoundResult]) -> str:
    """What the numbers are over: the replicates, or that no interval can be given."""
    counts = sorted({r.replicates for r in rows})
    if not counts or counts[-1] <= 1:
        return f"test %: {NO_INTERVAL}"
    many = f"{counts[0]}–{counts[-1]}" if len(counts) > 1 else str(counts[0])
    return (f"{many} replicates: test % is the mean ± its 95% t-interval, range the min–max")


def to_csv(rows: list[RoundResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["round", "scheme", "remaining", "test_acc", "test_acc_std",
                     "test_acc_ci95_low", "test_acc_ci95_high", "test_acc_min", "test_acc_max",
                     "early_stop_iteration", "best_val_acc", "replicates"])
    for r in rows:
        hw = r.test_acc_half_width
        ci = ("", "") if hw is None else (f"{r.test_acc - hw:.6f}", f"{r.test_acc + hw:.6f}")
        writer.writerow([r.round, r.scheme, f"{r.remaining:.6f}", f"{r.test_acc:.6f}",
                         f"{r.test_acc_std:.6f}", *ci, f"{r.test_acc_min:.6f}",
                         f"{r.test_acc_max:.6f}", f"{r.early_stop_iteration:.1f}",
                         f"{r.best_val_acc:.6f}", r.replicates])
    return out.getvalue()


def pruning_axis(remaining: float) -> float:
    """x coordinate for 'weights remaining' plots: -log10 of the percentage left, so the dense
    network sits at the left and pruning moves right on a log scale. plotext's own log axes are
    unreliable; callers plot this and label ticks with :func:`percent_ticks`."""
    return -math.log10(max(remaining, 1e-6) * 100)


def percent_ticks(remainings: Iterable[float], most: int = 8) -> tuple[list[float], list[str]]:
    """Tick positions on :func:`pruning_axis` and their labels (percent left)."""
    values = sorted({round(100 * r, 1) for r in remainings}, reverse=True)
    step = max(1, math.ceil(len(values) / most))  # no overlapping labels at 80 columns
    shown = values[::step]
    return [pruning_axis(v / 100) for v in shown], [f"{v:g}" for v in shown]


UNITS_LABEL = "units"  # how lists name a run of prune.structure = "unit"


def structure_label(cfg: Config | None) -> str:
    """``units`` for a config of ``prune.structure = "unit"`` (structured pruning: whole
    neurons and channels), "" for weight pruning or an unreadable config."""
    return UNITS_LABEL if cfg is not None and cfg.prune.structure == "unit" else ""


def run_summary_checked(run: RunDir) -> tuple[dict[str, str], list[LineProblem]]:
    """One row of the runs list (shared by the CLI and the app's Runs screen), and the damaged
    lines of the run's metrics.jsonl."""
    status = run.read_status()
    try:
        cfg = run.config()
        dataset, schemes, rounds = cfg.data.dataset, ", ".join(cfg.prune.schemes), cfg.num_rounds
        structure = structure_label(cfg)
    except (ValueError, OSError):  # ConfigError, or a damaged config.toml: the rest still shows
        dataset, schemes, rounds, structure = "?", "?", 0, ""
    metrics, problems = run.metrics_checked()
    rows = round_results(metrics)
    pruned = [r for r in rows if r.round > 0]
    best = max(pruned, key=lambda r: (r.test_acc, -r.remaining), default=None)
    dense = next((r for r in rows if r.round == 0), None)
    return {
        "name": run.name,
        "status": status.effective_state,
        "dataset": dataset,
        "schemes": schemes,
        "rounds": f"{max((r.round for r in rows), default=0)}/{rounds}",
        "dense": f"{100 * dense.test_acc:.2f}%" if dense else "-",
        "best": (f"{100 * best.test_acc:.2f}% ({best.scheme}, {100 * best.remaining:.1f}% left)"
                 if best else "-"),
        "structure": structure,  # "units": structured pruning (whole neurons and channels)
    }, problems


@dataclass(frozen=True)
class RoundComparison:
    round: int
    remaining_a: float
    remaining_b: float
    paired: Paired | None  # None when the two schemes share no replicate in this round


def compare_schemes(metrics: Iterable[MetricRow], a: str, b: str) -> list[RoundComparison]:
    """Scheme ``a`` against ``b`` at each pruned round, paired by replicate (they share θ0)."""
    by_key = {(s.round, s.scheme, s.replicate): s for s in segment_results(metrics)}
    rounds = sorted({k[0] for k in by_key if k[0] > 0 and k[1] in (a, b)})
    found = []
    for round_ in rounds:
        a_segs = {k[2]: s for k, s in by_key.items() if k[:2] == (round_, a)}
        b_segs = {k[2]: s for k, s in by_key.items() if k[:2] == (round_, b)}
        if not a_segs or not b_segs:
            continue
        found.append(RoundComparison(
            round_, statistics.fmean(s.remaining for s in a_segs.values()),
            statistics.fmean(s.remaining for s in b_segs.values()),
            paired(a, b, {r: s.test_acc for r, s in a_segs.items()},
                   {r: s.test_acc for r, s in b_segs.items()})))
    return found
