"""Results from metrics rows: early stopping at the lowest validation loss, replicates."""

from __future__ import annotations

import pytest

from prunetui import results


def row(rep, rnd, scheme, it, val_loss, val_acc, test_acc, remaining=1.0):
    return {"replicate": rep, "round": rnd, "scheme": scheme, "iteration": it,
            "val_loss": val_loss, "val_acc": val_acc, "test_acc": test_acc,
            "remaining": remaining}


ROWS = [
    row(0, 0, "dense", 100, 0.5, 0.90, 0.91),
    row(0, 0, "dense", 200, 0.3, 0.93, 0.94),  # lowest validation loss: the early stop
    row(0, 0, "dense", 300, 0.4, 0.95, 0.96),  # best val acc, but not the early stop
    row(0, 1, "rewind", 100, 0.2, 0.97, 0.97, 0.8),
    row(1, 0, "dense", 100, 0.3, 0.92, 0.92),
    row(1, 1, "rewind", 100, 0.3, 0.96, 0.95, 0.8),
]


def test_early_stop_is_the_lowest_validation_loss():
    seg = results.segment_results(ROWS)[0]
    assert (seg.early_stop_iteration, seg.test_acc, seg.best_val_acc) == (200, 0.94, 0.95)


def test_replicates_give_mean_interval_and_range():
    dense, rewind = results.round_results(ROWS)
    assert dense.replicates == 2 and dense.test_acc == pytest.approx((0.94 + 0.92) / 2)
    assert rewind.test_acc_std == pytest.approx(0.01414, abs=1e-4)
    # 95% t-interval with one degree of freedom: t = 12.706, half-width t * s / sqrt(n)
    assert rewind.test_acc_half_width == pytest.approx(12.7062 * 0.0141421 / 2 ** 0.5, rel=1e-4)
    assert (rewind.test_acc_min, rewind.test_acc_max) == pytest.approx((0.95, 0.97))
    row = dict(zip(results.TABLE_HEADER, results.table_rows([rewind])[0], strict=True))
    assert (row["test %"], row["range"]) == ("96.00±12.71", "95.0–97.0")
    assert "2 replicates" in results.table_caption([dense, rewind])


def test_one_replicate_says_no_interval_can_be_given():
    rows = results.round_results([r for r in ROWS if r["replicate"] == 0])
    assert all(r.test_acc_half_width is None for r in rows)
    assert [row[3:5] for row in results.table_rows(rows)] == [("94.00", ""), ("97.00", "")]
    assert "no interval can be given" in results.table_caption(rows)
    csv = results.to_csv(rows).splitlines()
    assert csv[0].split(",")[5:7] == ["test_acc_ci95_low", "test_acc_ci95_high"]
    assert csv[1].split(",")[5:7] == ["", ""]


def test_lottery_curves_start_at_the_dense_point():
    curves = results.lottery_curves(results.round_results(ROWS))
    assert list(curves) == ["rewind"]
    assert [p.round for p in curves["rewind"]] == [0, 1]


def test_pruning_axis_puts_dense_left_and_ticks_match():
    assert results.pruning_axis(1.0) < results.pruning_axis(0.1) < results.pruning_axis(0.01)
    ticks, labels = results.percent_ticks([1.0, 0.8, 0.64, 0.1])
    assert labels == ["100", "80", "64", "10"]
    assert ticks == sorted(ticks)


def test_csv_has_one_line_per_round_and_scheme():
    text = results.to_csv(results.round_results(ROWS))
    assert text.splitlines()[0].startswith("round,scheme,remaining,test_acc")
    assert len(text.splitlines()) == 3
