"""Statistics over replicates: the t-interval against its formula, paired comparisons of two
schemes by seed and their verdicts, and `prunetui report --compare-schemes`."""

from __future__ import annotations

import math
import statistics

import pytest

from prunetui import config, results, stats, store
from prunetui.cli import main

# Two-sided 95% quantiles of Student's t (printed tables): df 1, 2, 4.
T975 = {1: 12.7062, 2: 4.3027, 4: 2.7764}


@pytest.mark.parametrize("values", [[0.9, 0.95], [0.91, 0.93, 0.92], [0.5, 0.6, 0.7, 0.8, 0.9]])
def test_interval_is_the_t_interval_of_the_mean(values):
    found = stats.summarize(values)
    n = len(values)
    expected = T975[n - 1] * statistics.stdev(values) / math.sqrt(n)
    assert found.half_width == pytest.approx(expected, rel=1e-4)
    assert (found.low, found.high) == pytest.approx((found.mean - expected, found.mean + expected),
                                                    rel=1e-4)
    assert (found.minimum, found.maximum, found.n) == (min(values), max(values), n)


def test_one_value_has_no_interval():
    found = stats.summarize([0.9])
    assert found.half_width is None and found.low is None and found.high is None
    assert stats.paired("a", "b", {0: 0.9}, {0: 0.8}).verdict == stats.NO_INTERVAL


def test_paired_verdicts():
    a = {0: 0.95, 1: 0.96, 2: 0.97}
    assert stats.paired("rewind", "reinit", a, {r: v - 0.05 for r, v in a.items()}
                        ).verdict == "rewind above reinit"  # the same gap in every seed
    assert stats.paired("rewind", "reinit", a, {r: v + 0.02 for r, v in a.items()}
                        ).verdict == "reinit above rewind"
    mixed = stats.paired("rewind", "reinit", a, {0: 0.97, 1: 0.95, 2: 0.965})
    assert mixed.difference.low < 0 < mixed.difference.high
    assert mixed.verdict == "no clear difference"


def test_pairing_is_by_seed_not_by_position():
    """Unpaired, these samples overlap completely; paired, every seed shows the same gain."""
    a = {0: 0.90, 1: 0.95, 2: 0.99}
    b = {0: 0.89, 1: 0.94, 2: 0.98}
    found = stats.paired("a", "b", a, b)
    assert found.difference.mean == pytest.approx(0.01)
    assert found.verdict == "a above b"
    assert stats.paired("a", "b", {0: 0.9}, {1: 0.9}) is None  # no shared replicate


def metric_rows(accs: dict[tuple[int, int, str], float]) -> list[dict]:
    return [{"replicate": rep, "round": rnd, "scheme": scheme, "iteration": 10,
             "remaining": 0.8 ** rnd, "train_loss": 0.1, "val_loss": 0.1, "val_acc": acc,
             "test_acc": acc, "elapsed_s": 0.0}
            for (rep, rnd, scheme), acc in accs.items()]


def test_compare_schemes_per_round(tmp_path):
    accs = {}
    for rep in range(3):
        accs[(rep, 0, "dense")] = 0.95
        for rnd in (1, 2):
            accs[(rep, rnd, "rewind")] = 0.96 + 0.001 * rep
            accs[(rep, rnd, "reinit")] = 0.96 + 0.001 * rep - (0.02 if rnd == 2 else 0.0)
    found = results.compare_schemes(metric_rows(accs), "rewind", "reinit")
    assert [c.round for c in found] == [1, 2]
    assert found[0].paired.difference.mean == pytest.approx(0.0)
    assert found[1].paired.verdict == "rewind above reinit"
    assert found[1].paired.difference.n == 3


def test_report_compare_schemes_prints_verdicts(tmp_path, capsys):
    cfg = config.apply_overrides(config.Config(), [("train.replicates", 3)])
    run = store.create_run(tmp_path, "r", config.dumps(cfg))
    accs = {(rep, 0, "dense"): 0.95 for rep in range(3)}
    accs |= {(rep, 1, "rewind"): 0.97 + 0.001 * rep for rep in range(3)}
    accs |= {(rep, 1, "reinit"): 0.95 + 0.001 * rep for rep in range(3)}
    for row in metric_rows(accs):
        store.append_jsonl(run.metrics_path, row)
    assert main(["report", str(run.path), "--no-plot", "--compare-schemes", "rewind",
                 "reinit"]) == 0
    out = capsys.readouterr().out
    assert "rewind above reinit" in out and "+2.00" in out
    assert "3 replicates" in out  # the results table's caption
    assert main(["report", str(run.path), "--no-plot", "--compare-schemes", "rewind",
                 "keep"]) == 2
    assert "schemes are: reinit, rewind" in capsys.readouterr().err
