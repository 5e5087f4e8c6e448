"""Footprint: parameter counts, ShrinkBench FLOPs, inference backends agree, per-round rows."""

from __future__ import annotations

import math

import pytest
import torch

from prunetui import config, export, footprint, latency, pruning, store
from prunetui.nets import prunable_layers
from prunetui.nets.lenet import LeNet300100
from prunetui.nets.lightcnn import LightCNN9
from tests.test_export import lenet_run, lightcnn_run  # noqa: F401  (tiny real runs)

LENET_MACS = 784 * 300 + 300 * 100 + 100 * 10


def half_pruned_lenet() -> tuple[LeNet300100, pruning.Masks]:
    torch.manual_seed(0)
    net = LeNet300100().eval()
    weights = dict(net.state_dict())
    layers = prunable_layers(net)
    rates = pruning.PruneRates(rate=0.5, output_rate=0.5)
    masks = pruning.prune(pruning.magnitude_scores(weights, layers),
                          pruning.dense_masks(weights, layers), layers, rates, "layer")
    pruning.apply_masks(dict(net.named_parameters()), masks)
    return net, masks


def test_lenet_flops_and_parameters():
    net = LeNet300100()
    assert footprint.flops(net, (1, 28, 28)) == (LENET_MACS, LENET_MACS)
    half, _ = half_pruned_lenet()
    dense, nonzero = footprint.flops(half, (1, 28, 28))
    assert dense == LENET_MACS and nonzero == LENET_MACS // 2
    total, alive = footprint.parameter_counts(half)
    biases = 300 + 100 + 10
    assert total == LENET_MACS + biases
    assert alive == LENET_MACS // 2 + int(sum((p != 0).sum() for n, p in half.named_parameters()
                                             if n.endswith("bias")))


def test_conv_flops_count_every_output_position():
    net = LightCNN9((1, 32, 32), 5, width=0.25)
    dense, nonzero = footprint.flops(net, (1, 32, 32))
    c1 = net.conv1.weight.shape[0]  # 2 x 12 filters, 5x5, on 32x32 positions
    assert dense > c1 * 25 * 32 * 32
    with torch.no_grad():
        net.conv1.weight[: c1 // 2] = 0  # half of conv1's weights
    _, fewer = footprint.flops(net, (1, 32, 32))
    assert nonzero - fewer == c1 // 2 * 25 * 32 * 32


def test_every_backend_computes_the_same_logits(lenet_run):  # noqa: F811
    src = export.load_source(lenet_run, export.choose(lenet_run, 2, "rewind"))
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    forwards = footprint.backends(src)
    assert set(forwards) == set(latency.BACKENDS)
    with torch.inference_mode():
        expected = forwards["dense"](x)
        for name, forward in forwards.items():
            torch.testing.assert_close(forward(x), expected, rtol=1e-4, atol=1e-4, msg=name)
            torch.testing.assert_close(forward(x[:1]), expected[:1], rtol=1e-4, atol=1e-4,
                                       msg=name)


def test_lightcnn_has_no_sparse_backend():
    cfg = config.Config(data=config.DataConfig(dataset="faces", image_size=40, crop=32),
                        model=config.ModelConfig(arch="lightcnn-9", width=0.25))
    net = LightCNN9((1, 32, 32), 3, width=0.25)
    src = export.Source(run=store.RunDir("x"), cfg=cfg, replicate=0, round=0, scheme="dense",
                        weights=dict(net.state_dict()),
                        masks={n.name: torch.ones_like(net.state_dict()[n.name]).bool()
                               for n in prunable_layers(net)},
                        remaining=1.0, test_acc=0.5, early_stop_test_acc=0.5)
    assert set(footprint.backends(src)) == {"dense", "shrunk"}


def test_median_latency_is_a_positive_time():
    seconds = latency.median_latency(lambda x: x * 2, torch.ones(3), repeats=5, warmup=1)
    assert 0 < seconds < math.inf
    stopped = latency.median_latency(lambda x: x, torch.ones(3), repeats=5,
                                     should_stop=lambda: True)
    assert math.isnan(stopped)


def test_run_footprints_gives_one_row_per_round_of_the_scheme(lenet_run):  # noqa: F811
    progress = []
    scheme, rows = footprint.run_footprints(lenet_run, "keep", repeats=2,
                                            on_progress=lambda d, t: progress.append((d, t)))
    assert scheme == "keep" and [r.round for r in rows] == [0, 1, 2]
    assert progress[-1] == (3, 3)
    remaining = [r.remaining for r in rows]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] == 1.0
    for r in rows:
        assert set(r.sizes) == set(export.FORMATS)
        assert {(d, b) for d, _, b in r.latency} >= {("cpu", 1), ("cpu", 256)}
        assert r.compression == pytest.approx(1 / r.remaining, rel=0.05)
        assert r.speedup == pytest.approx(1 / r.remaining, rel=0.05)
    assert rows[2].sizes["sparse"] < rows[0].sizes["sparse"]
    with pytest.raises(export.ExportError, match="no finished round of scheme 'nope'"):
        footprint.run_footprints(lenet_run, "nope", repeats=1)


def test_run_footprints_reads_the_run_once_and_builds_each_round_once(lenet_run,  # noqa: F811
                                                                      monkeypatch):
    calls: dict[str, int] = {}

    def counted(owner, name):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    counted(store.RunDir, "metrics_checked")
    counted(store.RunDir, "config")
    counted(store, "load_segment")
    counted(export.Source, "build")
    counted(footprint, "build_export")
    counted(latency, "model_from")
    _, rows = footprint.run_footprints(lenet_run, "keep", repeats=1)
    assert [r.round for r in rows] == [0, 1, 2]
    assert calls == {"metrics_checked": 1, "config": 1, "load_segment": 3, "build": 3,
                     "build_export": 3 * len(export.FORMATS), "model_from": 3}


def test_measured_sizes_are_those_of_the_export_files(lenet_run):  # noqa: F811
    src = export.load_source(lenet_run, export.choose(lenet_run, 2, "rewind"))
    row = footprint.measure(src, batches=(1,), repeats=1)
    assert row.sizes == {f: len(export.build_export(src, f).data) for f in export.FORMATS}
    assert row.sizes == footprint.file_sizes(src)
    model = src.build()
    total, nonzero = footprint.parameter_counts(model)
    dense, sparse = footprint.flops(model, src.input_shape())
    assert (row.compression, row.speedup) == (total / nonzero, dense / sparse)
    assert {name for _, name, _ in row.latency} == set(footprint.REPORTED_BACKENDS)


def test_lightcnn_rows_time_dense_convolutions_only(lightcnn_run):  # noqa: F811
    scheme, rows = footprint.run_footprints(lightcnn_run, repeats=2)
    assert scheme == "rewind" and [r.round for r in rows] == [0, 1, 2]
    assert {name for _, name, _ in rows[2].latency} == {"dense", "shrunk"}
    assert rows[2].sizes["sparse"] < rows[2].sizes["dense"]
    assert rows[2].speedup > 1 and rows[0].speedup == 1
