"""Publication figures: what is drawn (log x, one line per scheme, bands, markers) and files."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from prunetui import config, extras, figures, results, store
from prunetui.cli import main

SCHEMES = ("keep", "reinit", "rewind")


def fake_run(out: Path, name: str, replicates: int = 1, rounds: int = 3, shift: float = 0.0,
             seed: int = 0, schemes: tuple[str, ...] = SCHEMES) -> store.RunDir:
    """A finished run's files with made-up but varied accuracies (3 evaluations a segment)."""
    cfg = config.apply_overrides(config.Config(), [
        ("prune.rounds", rounds), ("train.replicates", replicates), ("train.seed", seed),
        ("prune.schemes", list(schemes))])
    run = store.create_run(out, name, config.dumps(cfg))
    lines = []
    for rep in range(replicates):
        for round_ in range(rounds + 1):
            for s, scheme in enumerate(("dense",) if round_ == 0 else schemes):
                for k, it in enumerate((100, 200, 300)):
                    acc = 0.9 + 0.01 * round_ * (s - 1) + 0.004 * rep + 0.002 * k + shift
                    lines.append({
                        "replicate": rep, "round": round_, "scheme": scheme, "epoch": 0.1,
                        "iteration": it, "remaining": 0.8 ** round_, "train_loss": 0.3,
                        "val_loss": 0.3 - 0.01 * k * (1 if k < 2 else -1), "val_acc": acc,
                        "test_acc": acc, "elapsed_s": 1.0})
    run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    run.write_status(store.FINISHED)
    return run


def write_sweep_record(sweep: Path, runs: list[tuple[str, str]]) -> None:
    """sweep.toml listing each (run name, setting), as ``prunetui sweep`` writes it."""
    (sweep / "sweep.toml").write_text(
        f"name = '{sweep.name}'\n" + "".join(f"[[runs]]\nname = '{name}'\nsetting = "
                                           f"'{setting}'\n" for name, setting in runs))


def legend_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_lottery_points_are_early_stop_means_and_stds_over_replicates(tmp_path):
    run = fake_run(tmp_path, "r", replicates=3)
    source = figures.sources_from_paths([run.path])[0]
    curves = figures.lottery_points(source)
    assert list(curves) == list(SCHEMES)
    table = {(r.round, r.scheme): r for r in results.round_results(run.metrics())}
    for scheme, points in curves.items():
        assert len(points) == 4  # the dense round starts every scheme's line
        dense = table[(0, "dense")]
        assert points[0].mean == pytest.approx(100 * dense.test_acc)
        for round_, point in enumerate(points[1:], start=1):
            row = table[(round_, scheme)]
            assert point.x == pytest.approx(100 * row.remaining)
            assert point.mean == pytest.approx(100 * row.test_acc)
            assert point.half_width == pytest.approx(100 * row.test_acc_half_width)
            assert (point.minimum, point.maximum) == pytest.approx(
                (100 * row.test_acc_min, 100 * row.test_acc_max))
            assert point.samples == 3


def test_figure_has_log_x_reversed_one_line_per_scheme_with_markers_and_bands(tmp_path):
    run = fake_run(tmp_path, "r", replicates=2)
    fig = figures.build_figure(figures.sources_from_paths([run.path]), round_=2)
    lottery, during = fig.axes
    assert lottery.get_xscale() == "log"
    left, right = lottery.get_xlim()
    assert left > 100 > 0.8 ** 3 * 100 > right  # dense on the left, pruning to the right
    assert legend_labels(lottery) == list(SCHEMES)
    from matplotlib.collections import LineCollection, PolyCollection

    curves = [line for line in lottery.get_lines() if not line.get_label().startswith("_")]
    assert len({line.get_marker() for line in curves}) == len(SCHEMES)  # told apart sans colour
    bands = [c for c in lottery.collections if isinstance(c, PolyCollection)]
    bars = [c for c in lottery.collections if isinstance(c, LineCollection)]
    assert len(bands) == len(SCHEMES)  # a 95% t-interval band per scheme
    assert len(bars) == len(SCHEMES)  # min–max error bars per scheme
    assert "log" in lottery.get_xlabel() and "%" in lottery.get_ylabel()
    # Round 2's curves: accuracy against iteration, the mean of the replicates.
    assert legend_labels(during) == list(SCHEMES)
    keep = during.get_lines()[0]
    rows = [r for r in run.metrics() if r["round"] == 2 and r["scheme"] == "keep"]
    for it, y in zip(keep.get_xdata(), keep.get_ydata(), strict=True):
        assert y == pytest.approx(100 * statistics.fmean(
            r["test_acc"] for r in rows if r["iteration"] == it))


def test_no_bands_without_replicates_and_line_styles_tell_compared_runs_apart(tmp_path):
    a, b = fake_run(tmp_path, "a"), fake_run(tmp_path, "b", shift=0.01)
    single = figures.build_figure(figures.sources_from_paths([a.path]))
    assert len(single.axes) == 1 and not single.axes[0].collections
    both = figures.build_figure(figures.sources_from_paths([a.path, b.path])).axes[0]
    assert legend_labels(both) == [f"{r} · {s}" for r in "ab" for s in SCHEMES]
    lines = both.get_lines()
    assert {line.get_linestyle() for line in lines[:3]} != {line.get_linestyle()
                                                           for line in lines[3:]}
    assert [line.get_marker() for line in lines[:3]] == [line.get_marker() for line in lines[3:]]


def test_a_sweep_setting_pools_its_seeds_into_one_line_with_a_band(tmp_path):
    sweep = tmp_path / "sw"
    for seed in (0, 1):
        fake_run(sweep, f"mnist-seed{seed}", shift=0.003 * seed, seed=seed)
    fake_run(sweep, "fashion-seed0", shift=-0.1)
    write_sweep_record(sweep, [("mnist-seed0", "mnist"), ("mnist-seed1", "mnist"),
                               ("fashion-seed0", "fashion")])
    sources = figures.sources_from_paths([sweep])
    assert [s.label for s in sources] == ["mnist", "fashion"]
    assert len(sources[0].metrics) == 2
    points = figures.lottery_points(sources[0])["keep"]
    assert all(p.samples == 2 and p.half_width > 0 and p.maximum > p.minimum for p in points)
    ax = figures.build_figure(sources).axes[0]
    # a band and min–max bars for mnist (2 seeds) only
    assert len(ax.collections) == 2 * len(SCHEMES)


def test_a_sweep_run_not_created_yet_is_skipped_and_the_others_keep_their_own_schemes(
        tmp_path):
    # mnist-seed1 is listed but was never created; mnist-seed2 has only done its dense round,
    # so its schemes come from its own config.toml (its metrics name none yet).
    sweep = tmp_path / "sw"
    first = fake_run(sweep, "mnist-seed0", schemes=("keep",))
    last = fake_run(sweep, "mnist-seed2", seed=2, schemes=("rewind",))
    dense_only = [r for r in last.metrics() if r["round"] == 0]
    last.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in dense_only))
    fashion = fake_run(sweep, "fashion-seed0", shift=-0.1)
    write_sweep_record(sweep, [("mnist-seed0", "mnist"), ("mnist-seed1", "mnist"),
                               ("mnist-seed2", "mnist"), ("fashion-seed0", "fashion")])
    mnist, fash = figures.sources_from_paths([sweep])
    assert mnist == figures.FigureRun(
        "mnist", (tuple(first.metrics()), tuple(dense_only)), ("keep", "rewind"))
    assert fash == figures.FigureRun("fashion", (tuple(fashion.metrics()),), SCHEMES)
    assert list(figures.lottery_points(mnist)) == ["keep", "rewind"]


def test_a_missing_run_among_compared_paths_is_a_clear_error(tmp_path, capsys):
    a, c = fake_run(tmp_path, "a"), fake_run(tmp_path, "c")
    gone = tmp_path / "b"
    with pytest.raises(figures.FigureError, match="b is not a run directory"):
        figures.sources_from_paths([a.path, gone, c.path])
    assert main(["report", str(a.path), "--figure", str(tmp_path / "x.png"),
                 "--compare", str(gone), "--compare", str(c.path)]) == 2
    assert f"{gone} is not a run directory" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"),
                                               (".pdf", b"%PDF")])
def test_report_figure_writes_each_format(tmp_path, capsys, suffix, magic):
    run = fake_run(tmp_path, "r")
    out = tmp_path / "figs" / f"lth{suffix}"
    assert main(["report", str(run.path), "--figure", str(out), "--round", "1",
                 "--no-plot"]) == 0
    assert out.read_bytes().startswith(magic)
    assert f"Wrote {out}" in " ".join(capsys.readouterr().out.split())


def test_report_figure_usage_errors_exit_2(tmp_path, capsys, monkeypatch):
    run = fake_run(tmp_path, "r")
    assert main(["report", str(run.path), "--figure", str(tmp_path / "x.jpg")]) == 2
    assert ".png, .svg, .pdf" in capsys.readouterr().err
    assert main(["report", str(run.path), "--round", "1"]) == 2
    assert "--figure" in capsys.readouterr().err
    assert main(["report", str(run.path), "--figure", str(tmp_path / "x.png"),
                 "--round", "9"]) == 2
    assert "rounds with data: 0, 1, 2, 3" in capsys.readouterr().err
    monkeypatch.setitem(extras.EXTRAS, "figures", "no_such_module_for_this_test")
    assert main(["report", str(run.path), "--figure", str(tmp_path / "x.png")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "pip install 'prunetui[figures]'" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()
