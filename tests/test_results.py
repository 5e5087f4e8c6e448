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


def test_replicates_give_mean_and_std():
    dense, rewind = results.round_results(ROWS)
    assert dense.replicates == 2 and dense.test_acc == pytest.approx((0.94 + 0.92) / 2)
    assert rewind.test_acc_std == pytest.approx(0.01414, abs=1e-4)
    assert results.format_acc(rewind.test_acc, rewind.test_acc_std, 2) == "96.00 ± 1.41"


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
