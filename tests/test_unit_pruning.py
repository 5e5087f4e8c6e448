"""Unit (structured) pruning in the round loop and the export: ``prune.structure = "unit"``.

Tiny runs on real MNIST (LeNet-300-100, and a small conv net of the user's own with BatchNorm
ranked by ``bn-scale``) and on generated faces (LightCNN-9): every scheme, kill -9 and resume,
the shrunk export against the masked network, weight runs unchanged, and the bad inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from prunetui import config, export, store
from prunetui.cli import main
from prunetui.experiment import Experiment
from prunetui.nets import build_model, prunable_layers
from prunetui.nets.shapes import as_images, image_shape
from prunetui.replicates import fresh_state
from prunetui.segments import Segment
from prunetui.store import new_run
from prunetui.trajectory import ReplicateState, segment_start
from prunetui.unitmasks import unit_pruner
from tests.conftest import REPO, tiny_overrides
from tests.test_experiment import kill_then_resume
from tests.test_faces_data import make_faces

SCHEMES = ["keep", "reinit", "rewind", "random-mask"]


# --- networks of a user's own (model.arch = "tests.test_unit_pruning:...") --------------------


class SmallCNN(nn.Module):
    """Conv-BN-ReLU-pool twice, a hidden Linear and the classifier."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int) -> None:
        super().__init__()
        self.shape = image_shape(input_shape)
        channels, height, side = self.shape
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.fc1 = nn.Linear(2 * width * (height // 4) * (side // 4), 24)
        self.fc = nn.Linear(24, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = as_images(x, self.shape)
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.relu(self.fc1(x.flatten(1))))


def small_cnn(num_classes: int, input_shape: tuple[int, ...], width: int = 4) -> nn.Module:
    return SmallCNN(input_shape, num_classes, width)


def narrow(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """784 -> 40 -> 2 -> classes: fc2 has only two units to lose."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 40), nn.ReLU(), nn.Linear(40, 2),
                         nn.ReLU(), nn.Linear(2, num_classes))


class Split(nn.Module):
    """Two halves of one convolution added together: a coupling no tool resolves."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(as_images(x, (1, 28, 28))).chunk(2, dim=1)
        return self.fc(torch.relu(a + b).mean((2, 3)))


def split(num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    return Split()


# --- helpers -----------------------------------------------------------------------------------


def unit_config(root: Path, **extra) -> config.Config:
    values = {"prune.structure": "unit", "prune.schemes": SCHEMES, **extra}
    return config.apply_overrides(config.Config(), tiny_overrides(root, **values))


def run_to_end(cfg: config.Config, out: Path, name: str) -> store.RunDir:
    run = new_run(cfg, out, name)
    assert Experiment(run).execute() == store.FINISHED
    return run


def comparable(run: store.RunDir) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in run.metrics()]


def final(run: store.RunDir, round_: int, scheme: str):
    return store.load_segment(run.segment_checkpoint(0, round_, scheme))


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def exported(run: store.RunDir, round_: int, scheme: str, fmt: str, out: Path):
    """(masked network, loaded export, export file) of one finished segment."""
    src = export.load_source(run, export.Choice(0, round_, scheme, "test"))
    export.export(src, fmt, out)
    return src.build(), export.load_pruned(out), out


def same_function(masked: nn.Module, loaded: nn.Module, shape: tuple[int, ...]) -> float:
    x = torch.randn(64, *shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want, got = masked.eval()(x), loaded(x)
    assert torch.equal(got.argmax(1), want.argmax(1))
    diff = (got - want).abs().max().item()
    assert diff <= 1e-5
    return diff


@pytest.fixture(scope="module")
def lenet_run(mnist_root, tmp_path_factory) -> store.RunDir:
    return run_to_end(unit_config(mnist_root), tmp_path_factory.mktemp("units"), "lenet")


@pytest.fixture(scope="module")
def cnn_run(mnist_root, tmp_path_factory) -> store.RunDir:
    """bn-scale on a user's conv net (fc1, without a BatchNorm after it, left dense), every
    other scheme on rewind's shared unit masks."""
    cfg = unit_config(mnist_root, **{
        "model.arch": "tests.test_unit_pruning:small_cnn", "model.args": {"width": 4},
        "prune.unit_criterion": "bn-scale", "prune.skip": ["fc1"], "prune.rate": 0.5,
        "prune.rounds": 1, "prune.mask_from": "rewind", "train.eval_every": 30,
        "prune.schemes": ["finetune", "lr-rewind:10", "rewind", "rewind:10", "random-mask"]})
    return run_to_end(cfg, tmp_path_factory.mktemp("cnn"), "cnn")


# --- (a) the loop: every scheme, whole rows, remaining from the unit counts --------------------


def test_a_lenet_unit_run_removes_whole_units_with_every_scheme(lenet_run):
    records = {(r["round"], r["scheme"]): r for r in lenet_run.sparsity()}
    assert set(records) == {(0, "dense")} | {(k, s) for k in (1, 2) for s in SCHEMES}
    for (round_, scheme), record in records.items():
        units = record["units"]
        a, b = units["fc1.weight"][0], units["fc2.weight"][0]
        assert (a, b) == ({0: 300, 1: 240, 2: 192}[round_], {0: 100, 1: 80, 2: 64}[round_])
        assert units["fc3.weight"] == [10, 10]  # the classes stay
        alive = 784 * a + a * b + b * 10
        assert record["counts"] == {"fc1.weight": [784 * a, 235200],
                                    "fc2.weight": [a * b, 30000], "fc3.weight": [10 * b, 1000]}
        assert record["remaining"] == alive / 266200
        assert set(record["layers"]) == {"fc1.weight", "fc2.weight", "fc3.weight"}
        rows = [r for r in lenet_run.metrics() if (r["round"], r["scheme"]) == (round_, scheme)]
        assert rows and all(r["remaining"] == record["remaining"] for r in rows)
        if round_ == 0:
            continue
        ckpt = final(lenet_run, round_, scheme)
        w, m = ckpt.weights, ckpt.masks
        inputs = torch.ones(784, dtype=torch.bool)
        for layer, reader in (("fc1", "fc2"), ("fc2", "fc3")):
            rows_alive = m[f"{layer}.weight"].any(1)
            # whole rows: an alive unit keeps every weight from an alive input
            assert torch.equal(m[f"{layer}.weight"][:, inputs].all(1), rows_alive)
            assert not m[f"{layer}.weight"][:, ~inputs].any()
            assert torch.equal(m[f"{layer}.bias"], rows_alive)
            dead = ~rows_alive
            assert int(dead.sum()) == units[f"{layer}.weight"][1] - units[f"{layer}.weight"][0]
            assert not w[f"{layer}.weight"][dead].any() and not w[f"{layer}.bias"][dead].any()
            assert not m[f"{reader}.weight"][:, dead].any()
            assert not w[f"{reader}.weight"][:, dead].any()
            assert w[f"{reader}.weight"][:, rows_alive].ne(0).any()
            inputs = rows_alive
    masks = {s: final(lenet_run, 2, s).masks["fc1.weight"].any(1) for s in SCHEMES}
    assert not torch.equal(masks["random-mask"], masks["rewind"])
    assert lenet_run.metrics()[-1]["test_acc"] > 0.5


def test_reset_schemes_start_from_masked_weights_batchnorm_included(mnist_root):
    cfg = unit_config(mnist_root, **{"model.arch": "tests.test_unit_pruning:small_cnn",
                                     "prune.schemes": ["keep", "reinit", "rewind"],
                                     "prune.rate": 0.5})
    model = build_model(cfg.model, (784,), 10)
    layers = prunable_layers(model)
    units = unit_pruner(cfg, model, layers, (784,))

    def state(seed: int) -> dict[str, torch.Tensor]:
        fresh = fresh_state(cfg.model, (784,), 10, seed)
        for name, value in fresh.items():  # BatchNorm scales and shifts far from 0
            if ".bn" in name or name.startswith("bn"):
                fresh[name] = value.float() + 1 if value.is_floating_point() else value
        return fresh

    theta0, trained = state(1), state(2)
    rep = ReplicateState(0, 7, theta0, schemes=cfg.prune.schemes)
    rep.record("dense", trained, units.dense_masks())
    for scheme in cfg.prune.schemes:
        start, masks = segment_start(cfg, Segment(0, 1, scheme), rep, layers, state,
                                     units=units)
        assert {"bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias", "conv1.bias",
                "fc1.weight"} <= set(masks)
        for name, mask in masks.items():
            assert not start[name][mask == 0].any(), (scheme, name)
        assert int((masks["bn1.weight"] == 0).sum()) == 2  # half of conv1's 4 channels


def test_bn_scale_every_scheme_and_shared_unit_masks_on_a_users_conv_net(cnn_run):
    shared = final(cnn_run, 1, "rewind").masks
    for scheme in ("finetune", "lr-rewind:10", "rewind:10"):
        masks = final(cnn_run, 1, scheme).masks
        assert all(torch.equal(masks[k], shared[k]) for k in shared)
    rand = final(cnn_run, 1, "random-mask").masks
    assert int(rand["bn2.weight"].sum()) == int(shared["bn2.weight"].sum()) == 4
    assert not torch.equal(rand["bn2.weight"], shared["bn2.weight"])
    record = {(r["round"], r["scheme"]): r for r in cnn_run.sparsity()}[(1, "rewind")]
    assert record["units"] == {"conv1.weight": [2, 4], "conv2.weight": [4, 8],
                               "fc1.weight": [24, 24], "fc.weight": [10, 10]}
    ckpt = final(cnn_run, 1, "rewind")
    dead = ~ckpt.masks["bn1.weight"]
    for name in ("conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias"):
        assert not ckpt.weights[name][dead].any()
    assert not ckpt.weights["conv2.weight"][:, dead].any()
    # fc1 is skipped: its units stay, but the columns of conv2's removed channels are zero
    assert record["counts"].keys() == {"conv1.weight", "conv2.weight", "fc.weight"}
    assert int((~ckpt.masks["fc1.weight"].all(0)).sum()) == 4 * 49


# --- (b) kill -9, then resume ------------------------------------------------------------------


def test_kill_9_in_a_pruned_round_then_resume_gives_identical_metrics(mnist_full_root,
                                                                       tmp_path):
    # 120 iterations = 12 epochs of 10 batches per segment, 12 rows each: dense, then keep.
    # The kill comes in the pruned round with at least 8 rows still to train (each evaluating
    # all 10,000 test images), so it lands mid-run however fast the machine is.
    cfg = unit_config(mnist_full_root, **{"train.iterations": 120, "prune.rounds": 1,
                                          "prune.schemes": ["keep"]})
    expected = comparable(run_to_end(cfg, tmp_path / "ref", "ref"))
    run = new_run(cfg, tmp_path, "killed")
    kill_then_resume(run, range(13, 17), 1)
    assert comparable(run) == expected
    assert [r.get("units") for r in run.sparsity()] == [
        r.get("units") for r in store.RunDir(tmp_path / "ref" / "ref").sparsity()]


# --- (c) the shrunk export computes what the masked network computes ---------------------------


def test_shrunk_lenet_export_is_smaller_and_computes_the_same(lenet_run, tmp_path, capsys):
    out = tmp_path / "lenet.pt"
    assert main(["export", str(lenet_run.path), str(out), "--round", "2", "--scheme",
                 "reinit", "--format", "shrunk"]) == 0
    assert "fc1 300->192, fc2 100->64" in capsys.readouterr().out
    src = export.load_source(lenet_run, export.Choice(0, 2, "reinit", "test"))
    masked, loaded = src.build(), export.load_pruned(out)
    diff = same_function(masked, loaded, (1, 28, 28))
    assert params(loaded) == 784 * 192 + 192 + 192 * 64 + 64 + 64 * 10 + 10 < params(masked)
    assert loaded.meta["shrink"]["params_after"] == params(loaded)
    assert loaded.meta["structure"] == "unit" and diff <= 1e-5
    for fmt in ("sparse", "dense"):  # the other formats keep working for unit runs
        masked, again, _ = exported(lenet_run, 2, "random-mask", fmt, tmp_path / f"{fmt}.pt")
        assert same_function(masked, again, (1, 28, 28)) == 0.0


def test_shrunk_user_network_and_lightcnn_load_in_a_fresh_python(cnn_run, tmp_path):
    masked, loaded, cnn_file = exported(cnn_run, 1, "rewind:10", "shrunk", tmp_path / "c.pt")
    same_function(masked, loaded, (1, 28, 28))
    assert loaded.meta["factory"] == {"name": "tests.test_unit_pruning:small_cnn",
                                      "args": {"width": 4}}
    assert (loaded.net.conv1.out_channels, loaded.net.bn2.num_features) == (2, 4)
    assert params(loaded) < params(masked)
    faces = make_faces(tmp_path / "faces", {"a": 8, "b": 8, "c": 8}, size=40)
    cfg = unit_config(faces, **{
        "data.dataset": "faces", "data.image_size": 40, "data.crop": 32,
        "model.arch": "lightcnn-9", "model.init": "kaiming-normal", "model.width": 0.25,
        "train.iterations": 6, "train.eval_every": 3, "train.batch_size": 8,
        "prune.rounds": 1, "prune.schemes": ["rewind"], "prune.rate": 0.5,
        "data.train_subset": 0, "data.validation": 0})
    run = run_to_end(cfg, tmp_path, "lightcnn")
    masked, loaded, light_file = exported(run, 1, "rewind", "shrunk", tmp_path / "l.pt")
    same_function(masked, loaded, (1, 32, 32))
    assert loaded.net.conv2a.weight.shape[0] == 2 * 6  # half of 12 MFM channels, two rows each
    script = (
        "import sys, torch, prunetui\n"
        "for path, shape in ((sys.argv[1], (1, 28, 28)), (sys.argv[2], (1, 32, 32))):\n"
        "    m = prunetui.load_pruned(path)\n"
        "    x = torch.randn(4, *shape)\n"
        "    print(tuple(m(x).shape), sum(p.numel() for p in m.parameters()))\n")
    done = subprocess.run([sys.executable, "-c", script, str(cnn_file), str(light_file)],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == [
        f"(4, 10) {params(export.load_pruned(cnn_file))}", f"(4, 3) {params(loaded)}"]


def test_a_users_network_that_cannot_be_imported_is_a_clear_load_error(cnn_run, tmp_path):
    _, _, path = exported(cnn_run, 1, "rewind", "dense", tmp_path / "d.pt")
    script = "import prunetui, sys; prunetui.load_pruned(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode != 0
    assert "tests.test_unit_pruning:small_cnn cannot be built here" in done.stderr
    assert "PYTHONPATH" in done.stderr


# --- (d) weight runs are unchanged -------------------------------------------------------------


def test_structure_weight_is_the_default_and_ignores_the_unit_criterion(mnist_root, tmp_path):
    extra = {"prune.rounds": 1, "prune.schemes": ["rewind", "random-mask"]}
    default = run_to_end(config.apply_overrides(config.Config(), tiny_overrides(
        mnist_root, **extra)), tmp_path, "default")
    assert config.Config().prune.structure == "weight"
    explicit = run_to_end(config.apply_overrides(config.Config(), tiny_overrides(
        mnist_root, **extra, **{"prune.structure": "weight",
                                "prune.unit_criterion": "bn-scale"})), tmp_path, "weight")
    assert comparable(explicit) == comparable(default)
    assert explicit.sparsity_path.read_bytes() == default.sparsity_path.read_bytes()
    record = explicit.sparsity()[-1]
    assert "units" not in record and set(record["counts"]) == {"fc1.weight", "fc2.weight",
                                                               "fc3.weight"}
    masks = final(explicit, 1, "rewind").masks
    assert set(masks) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    assert not masks["fc1.weight"].all(1).any() and masks["fc1.weight"].any(1).all()


# --- (e) bad inputs ----------------------------------------------------------------------------


def failure(cfg: config.Config, out: Path) -> tuple[config.ConfigError, store.RunDir]:
    run = new_run(cfg, out, "bad")
    with pytest.raises(config.ConfigError) as info:
        Experiment(run).execute()
    return info.value, run


def test_bn_scale_without_batchnorm_exits_2_naming_the_layer(mnist_root, tmp_path, capsys):
    quick = str(REPO / "presets" / "quick.toml")
    code = main(["run", quick, "--set", f"data.root={mnist_root}", "--set",
                 "prune.structure=unit", "--set", "prune.unit_criterion=bn-scale",
                 "--set", "prune.schemes=[\"rewind\"]", "--out", str(tmp_path / "m"),
                 "--plain"])
    assert code == 2
    err = capsys.readouterr().err
    assert "prune.unit_criterion" in err and "no BatchNorm reads fc1's output" in err
    assert "Traceback" not in err
    assert not any((tmp_path / "m").glob("*/metrics.jsonl"))  # stopped before any training


def test_a_layer_losing_all_its_units_stops_naming_the_layer_and_the_round(mnist_root,
                                                                          tmp_path):
    arch = {"model.arch": "tests.test_unit_pruning:narrow", "prune.schemes": ["rewind"]}
    err, run = failure(unit_config(mnist_root, **arch, **{"prune.rate": 0.6}), tmp_path)
    assert err.key == "prune.rate"
    assert "in round 2, layer 3 would lose all its 2 units" in str(err)
    assert "prune.skip" in str(err) and not run.metrics_path.exists()  # before any training
    err, run = failure(unit_config(mnist_root, **arch, **{
        "prune.rate": 0.9, "prune.scope": "global", "prune.rounds": 1}), tmp_path / "g")
    assert "in round 1 of replicate 0 (rewind), layer 3 would lose all its 2 units" in str(err)
    assert "prune.skip" in str(err) and run.read_status().state == store.FAILED


def test_an_unresolved_coupling_stops_naming_the_layer(mnist_root, tmp_path):
    err, run = failure(unit_config(mnist_root, **{
        "model.arch": "tests.test_unit_pruning:split", "prune.schemes": ["rewind"]}), tmp_path)
    assert err.key == "prune.structure"
    assert "cannot prune layer conv" in str(err) and "channel split" in str(err)
    assert "prune.skip" in str(err) and not run.metrics_path.exists()
