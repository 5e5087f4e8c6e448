"""``report --size`` of a unit-pruned run: the shrunk network against the dense one per round
(parameters, FLOPs, file size, latency at batch 1 and 256), in 80 columns; weight runs' columns
unchanged."""

from __future__ import annotations

import math

import pytest
import torch

from prunetui import config, export, footprint, latency, store
from prunetui.cli import main
from prunetui.config import ModelConfig
from prunetui.experiment import Experiment
from prunetui.nets import build_model, prunable_layers
from prunetui.pruning import PruneRates
from prunetui.sizecolumns import (
    SIZE_COLUMNS,
    UNIT_SIZE_COLUMNS,
    count,
    latency_cells,
    latency_columns,
    ratio,
    size_cells,
    size_columns,
)
from prunetui.store import new_run
from prunetui.structure.graph import unit_groups
from prunetui.structure.shrink import masked_copy, shrink
from prunetui.structure.units import dense_unit_masks, prune_units, unit_scores
from tests.conftest import tiny_overrides


@pytest.fixture(scope="module")
def unit_run(mnist_root, tmp_path_factory) -> store.RunDir:
    """LeNet-300-100, half of the hidden units removed per round, two rounds of keep."""
    values = {"prune.structure": "unit", "prune.schemes": ["keep"], "prune.rate": 0.5,
              "prune.rounds": 2, "train.iterations": 20}
    cfg = config.apply_overrides(config.Config(), tiny_overrides(mnist_root, **values))
    run = new_run(cfg, tmp_path_factory.mktemp("unit-size"), "units")
    assert Experiment(run).execute() == store.FINISHED
    return run


def lenet_flops(units: dict[str, list[int]]) -> int:
    a, b = units["fc1.weight"][0], units["fc2.weight"][0]
    return 784 * a + a * b + b * 10


def test_unit_rows_count_the_shrunk_network_against_the_dense_one(unit_run, tmp_path):
    scheme, rows = footprint.run_footprints(unit_run, repeats=2)
    assert scheme == "keep" and [r.round for r in rows] == [0, 1, 2]
    units = {r["round"]: r["units"] for r in unit_run.sparsity()}
    dense_params = 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    for r in rows:
        assert r.structure == "unit" and r.shrunk is not None
        assert set(r.sizes) == set(footprint.UNIT_FORMATS)  # no sparse file to make
        assert set(r.latency) == {("cpu", b, n) for b in footprint.UNIT_BACKENDS
                                  for n in (1, 256)}
        assert all(0 < s < math.inf for s in r.latency.values())
        assert (r.shrunk.dense_params, r.shrunk.dense_flops) == (dense_params, 266_200)
        assert r.shrunk.flops == lenet_flops(units[r.round])
        assert r.compression == r.shrunk.dense_params / r.shrunk.params
        assert r.speedup == r.shrunk.dense_flops / r.shrunk.flops
    assert rows[0].shrunk.params == dense_params and rows[0].speedup == 1
    assert rows[2].shrunk.params < rows[1].shrunk.params < dense_params
    assert rows[2].speedup > 3  # fc1 300 -> 150 -> 75
    # the counts and the file are those of the shrunk export itself
    src = export.load_source(unit_run, export.Choice(0, 2, "keep", ""))
    data = export.build_export(src, "shrunk").data
    assert rows[2].sizes["shrunk"] == len(data) < 0.5 * rows[2].sizes["dense"]
    (tmp_path / "s.pt").write_bytes(data)
    loaded = export.load_pruned(tmp_path / "s.pt")
    assert rows[2].shrunk.params == sum(p.numel() for p in loaded.parameters())


@pytest.mark.parametrize("arch, shape, width", [("conv-4", (3, 32, 32), 1.0),
                                                 ("lightcnn-9", (1, 64, 64), 0.25)])
def test_shrunk_conv_flops_are_the_masked_networks_nonzero_flops(arch, shape, width):
    """A convolution's FLOPs count its output positions: the shrunk network's dense FLOPs are
    exactly the masked network's nonzero FLOPs (every removed weight was a masked one)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(ModelConfig(arch=arch, width=width), shape, 10).eval()
    groups, layers = unit_groups(model, torch.zeros(2, *shape)), prunable_layers(model)
    masks = prune_units(unit_scores(model, layers, "l1", groups), dense_unit_masks(groups),
                        layers, PruneRates(rate=0.5, output_rate=0.0),
                        "layer", groups)
    masked, small = masked_copy(model, masks, groups), shrink(model, masks, groups)
    dense, nonzero = footprint.flops(masked, shape)
    shrunk, _ = footprint.flops(small, shape)
    assert dense == footprint.flops(model, shape)[0]
    assert shrunk == nonzero
    assert 2.5 < dense / shrunk < 4.5  # about half the channels in and out of each layer


def test_interleaved_latency_times_each_forward_in_turns():
    order: list[str] = []
    fns = {n: (lambda x, n=n: order.append(n) or x) for n in ("dense", "shrunk")}
    found = latency.interleaved_latency(fns, torch.ones(2), repeats=4, warmup=1)
    assert set(found) == {"dense", "shrunk"} and all(0 < s < math.inf for s in found.values())
    assert order == ["dense", "shrunk"] * 5
    stopped = latency.interleaved_latency(fns, torch.ones(2), repeats=4,
                                          should_stop=lambda: True)
    assert all(math.isnan(s) for s in stopped.values())


def unit_row(round_: int, structure: str = "unit") -> footprint.Footprint:
    """A row as wide as a full-width LightCNN-9 or a ResNet-18 makes it."""
    latency = {("cpu", b, n): s for b, s in (("dense", 2.345678), ("shrunk", 1.234567))
               for n in (1, 256)}
    return footprint.Footprint(
        round=round_, scheme="keep", remaining=0.5 ** round_, test_acc=0.9876,
        compression=1.98, speedup=3.9, sizes={"dense": 45_000_000, "shrunk": 22_500_000},
        latency=latency, structure=structure,
        shrunk=footprint.ShrunkCounts(11_689_512, 5_900_000, 1_823_000_000, 467_000_000))


def test_unit_cells_and_columns():
    assert (count(266_610), count(11_689_512), count(1_503_000_000), count(950)) == \
        ("266.6k", "11.69M", "1.503G", "950")
    assert (ratio(2.0, 1.0), ratio(None, 1.0), ratio(1.0, float("nan"))) == ("2.00x", "-", "-")
    row = unit_row(1)
    assert size_columns("unit") == UNIT_SIZE_COLUMNS and size_columns() == SIZE_COLUMNS
    assert size_cells(row) == ("1", "50.0", "98.76", "5.9M", "2.0x", "467M", "3.9x",
                               "21,972.7")
    assert latency_columns(structure="unit") == (
        "b1 dense", "b1 shrunk", "b1 gain", "b256 dense", "b256 shrunk", "b256 gain")
    assert latency_cells(row) == ("2,345,678", "1,234,567", "1.90x") * 2
    unshrunk = unit_row(1)
    unshrunk.shrunk = None
    assert size_cells(unshrunk)[3:7] == ("-",) * 4
    # weight runs: the columns they always had
    assert latency_columns() == ("b1 dense", "b1 sparse", "b1 shrunk", "b256 dense",
                                 "b256 sparse", "b256 shrunk")


def test_report_size_of_a_unit_run_fits_80_columns(unit_run, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    rows = [unit_row(r) for r in range(3)]
    monkeypatch.setattr(footprint, "run_footprints", lambda *a, **k: ("keep", rows))
    assert main(["report", str(unit_run.path), "--size"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines() if "│" in line or "┃" in line) <= 80
    assert "shrunk network (file KiB)" in out and "CPU latency (µs), dense and shrunk" in out
    for cell in ("5.9M", "467M", "21,972.7", "2,345,678", "1,234,567", "1.90x"):
        assert cell in out, cell
    assert "Dense network: 11,689,512 parameters, 1.823G FLOPs, 43,945.3 KiB file" in out
    assert "gain = dense / shrunk latency" in out
    assert "speedup over the dense one" in out  # the plot
    assert "sparse" not in out.split("shrunk network (file KiB)")[1]


def test_report_size_measures_a_real_unit_run(unit_run, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["report", str(unit_run.path), "--size", "--no-plot"]) == 0
    out = capsys.readouterr().out
    size_table = out.split("shrunk network (file KiB)")[1].split("CPU latency")[0]
    assert "266.6k" in size_table and "266.2k" in size_table  # round 0: the dense network
    assert "b256" in out and "gain" in out
