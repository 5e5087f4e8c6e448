"""A sweep's comparison across settings: over seeds at each level of weights left, the mean, its
95% t-interval and the min–max range, as rows, a table, CSV and one curve per setting and
scheme."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from prunetui import config, results, store
from prunetui.segments import round_owners
from prunetui.stats import summarize
from prunetui.sweep.folder import SweepDir


@dataclass(frozen=True)
class ComparisonRow:
    setting: str
    scheme: str
    round: int
    remaining: float
    mean: float  # test accuracy at early stop, over seeds (and replicates)
    std: float
    seeds: int
    half_width: float | None = None  # of the 95% t-interval (None: one sample)
    minimum: float = 0.0
    maximum: float = 0.0


def comparison(sweep: SweepDir) -> list[ComparisonRow]:
    """Per setting and scheme, each round's test accuracy over the setting's seeds.

    The dense round 0 belongs to every scheme of a run (:func:`segments.round_owners`), so it
    is repeated under each scheme: every curve then starts at the dense network, as in the
    run's own Lottery Ticket plot.
    """
    groups: dict[tuple[str, str, int], list[results.SegmentResult]] = defaultdict(list)
    schemes_of: dict[str, list[str]] = defaultdict(list)
    for entry in sweep.entries():
        run, setting = store.RunDir(sweep.path / entry.name), entry.setting
        try:
            run_schemes = list(run.config().prune.schemes)
        except config.ConfigError:
            continue
        for scheme in run_schemes:
            if scheme not in schemes_of[setting]:
                schemes_of[setting].append(scheme)
        for seg in results.segment_results(run.metrics()):
            for scheme in round_owners(seg.scheme, run_schemes):
                groups[(setting, scheme, seg.round)].append(seg)
    order = list(schemes_of)
    rows = []
    for (setting, scheme, round_), segs in groups.items():
        accs = [s.test_acc for s in segs]
        found = summarize(accs)
        rows.append(ComparisonRow(
            setting=setting, scheme=scheme, round=round_,
            remaining=statistics.fmean(s.remaining for s in segs),
            mean=found.mean, std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
            seeds=len(accs), half_width=found.half_width, minimum=found.minimum,
            maximum=found.maximum))
    return sorted(rows, key=lambda r: (order.index(r.setting),
                                       schemes_of[r.setting].index(r.scheme), r.round))


def comparison_table(rows: list[ComparisonRow]) -> tuple[list[str], list[list[str]]]:
    """Header and cells: one row per setting and round, two columns per scheme (mean ± the 95%
    t-interval, and the min–max range)."""
    schemes = list(dict.fromkeys(r.scheme for r in rows))
    cells: dict[tuple[str, int], dict[str, ComparisonRow]] = defaultdict(dict)
    for r in rows:
        cells[(r.setting, r.round)][r.scheme] = r
    header = ["setting", "round", "left %",
              *(name for s in schemes for name in (s, f"{s} range")), "n"]
    body = []
    for (setting, round_), by_scheme in cells.items():
        first = next(iter(by_scheme.values()))
        body.append([setting, str(round_), f"{100 * first.remaining:.1f}",
                     *(cell for s in schemes for cell in _acc(by_scheme.get(s))),
                     str(max(r.seeds for r in by_scheme.values()))])
    return header, body


def ranges_below(header: list[str], body: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The table for narrow screens: each "<scheme> range" column folded under the scheme's
    mean, in its own column (two-line cells)."""
    keep = [i for i, name in enumerate(header) if not name.endswith(" range")]

    def folded(cells: list[str]) -> list[str]:
        return [f"{cells[i]}\n{cells[i + 1]}".strip() if i + 1 < len(header)
                and header[i + 1].endswith(" range") else cells[i] for i in keep]

    return [header[i] for i in keep], [folded(cells) for cells in body]


def table_width(header: list[str], body: list[list[str]], padding: int = 3) -> int:
    """Columns a table of these cells needs: the widest line of each column, plus padding."""
    return sum(max(len(line) for cells in [header, *body] for line in cells[i].splitlines()
                   or [""]) + padding for i in range(len(header)))


def _acc(row: ComparisonRow | None) -> tuple[str, str]:
    if row is None:
        return "", ""
    return (results.format_acc(row.mean, row.half_width),
            results.format_range(row.minimum, row.maximum, row.seeds))


def comparison_csv(rows: list[ComparisonRow]) -> str:
    lines = ["setting,scheme,round,remaining,test_acc_mean,test_acc_std,test_acc_ci95_low,"
             "test_acc_ci95_high,test_acc_min,test_acc_max,seeds"]
    for r in rows:
        ci = ",".join(("", "") if r.half_width is None else
                      (f"{r.mean - r.half_width:.6f}", f"{r.mean + r.half_width:.6f}"))
        lines.append(f"{r.setting},{r.scheme},{r.round},{r.remaining:.6f},{r.mean:.6f},"
                     f"{r.std:.6f},{ci},{r.minimum:.6f},{r.maximum:.6f},{r.seeds}")
    return "\n".join(lines) + "\n"


def comparison_curves(rows: list[ComparisonRow]) -> dict[str, list[ComparisonRow]]:
    """``"setting scheme"`` -> its points in round order, for charts of the means."""
    curves: dict[str, list[ComparisonRow]] = defaultdict(list)
    for r in rows:
        curves[f"{r.setting} {r.scheme}" if r.setting != "all" else r.scheme].append(r)
    return dict(curves)
