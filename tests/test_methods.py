"""The methods the field compares, inside the round loop on real MNIST: fine-tuning,
learning-rate rewinding and pruning at initialisation under a step schedule, including a
kill -9 and resume."""

from __future__ import annotations

import pytest
import torch

from prunetui import config, saliency, store
from prunetui.data import load_data
from prunetui.nets import build_model, layers_for
from prunetui.store import new_run
from prunetui.store.checkpoint import THETA0_KEY, load_checkpoint, load_segment
from prunetui.training import mix_seed
from tests.conftest import tiny_overrides
from tests.test_experiment import comparable, kill_then_resume, run_to_end

SCHEMES = ["rewind", "finetune", "lr-rewind:10", "snip", "grasp", "synflow"]
STEP = {"train.optimizer": "sgd", "train.lr": 0.05, "train.schedule": "step",
        "train.milestones": [15, 25], "train.gamma": 0.2, "train.warmup": 3,
        "prune.schemes": SCHEMES}


def methods_config(root, **extra) -> config.Config:
    return config.apply_overrides(config.Config(), tiny_overrides(root, **(STEP | extra)))


@pytest.fixture(scope="module")
def methods_run(mnist_root, tmp_path_factory) -> store.RunDir:
    return run_to_end(methods_config(mnist_root), tmp_path_factory.mktemp("methods"), "m")


def test_every_method_trains_and_reports(methods_run):
    rows = methods_run.metrics()
    schemes = {r["scheme"] for r in rows if r["round"] > 0}
    assert schemes == set(SCHEMES)
    last = {(r["round"], r["scheme"]): r["iteration"] for r in rows}
    assert last[(1, "lr-rewind:10")] == 20  # the schedule from 10 to its end (30)
    assert last[(1, "finetune")] == last[(1, "rewind")] == 30
    assert all(0 <= r["test_acc"] <= 1 for r in rows)


def test_at_init_schemes_keep_as_many_weights_as_magnitude_pruning(methods_run):
    records = {(r["round"], r["scheme"]): r["counts"] for r in methods_run.sparsity()}
    for round_ in (1, 2):
        for scheme in ("snip", "grasp", "synflow", "finetune", "lr-rewind:10"):
            # layer scope: the same survivors per layer, elsewhere in each layer
            assert records[(round_, scheme)] == records[(round_, "rewind")], (round_, scheme)


def test_snip_masks_in_the_loop_are_scored_at_theta0(methods_run):
    cfg = methods_run.config()
    data = load_data(cfg)
    model = build_model(cfg.model, data.input_shape, data.num_classes)
    model.load_state_dict(load_checkpoint(methods_run.init_checkpoint(0))[THETA0_KEY])
    masks_rewind = load_segment(methods_run.segment_checkpoint(0, 2, "rewind")).masks
    survivors = {name: int(m.sum()) for name, m in masks_rewind.items()}
    seed = mix_seed(cfg.train.seed, 0)
    x, y = saliency.prune_sample(data, torch.Generator().manual_seed(mix_seed(seed, 300)))
    from prunetui.pruning import Survivors

    expected = saliency.at_init_masks("snip", model, layers_for(cfg, model),
                                      Survivors(per_layer=survivors), x, y)
    found = load_segment(methods_run.segment_checkpoint(0, 2, "snip")).masks
    for name, mask in expected.items():
        assert torch.equal(found[name].bool(), mask.bool()), name
    # and the snip segment started from theta0 under those masks: its masks differ from rewind's
    assert any(not torch.equal(found[n], masks_rewind[n]) for n in found)


def test_kill_9_during_a_step_schedule_run_then_resume_is_identical(mnist_full_root, tmp_path):
    # All 10,000 test images: each evaluation lasts long enough for the kill to land mid-run.
    cfg = methods_config(mnist_full_root, **{
        "prune.rounds": 1, "train.iterations": 60, "train.milestones": [20, 40],
        "prune.schemes": ["finetune", "lr-rewind:20", "snip"]})
    expected = comparable(run_to_end(cfg, tmp_path / "ref", "ref"))
    run = new_run(cfg, tmp_path, "killed")
    # At least 8 rows left after each kill: it lands mid-run however fast the machine is.
    kill_then_resume(run, range(3, len(expected) - 8), 2, "--no-estimate")
    assert comparable(run) == expected


def test_a_pruned_at_init_round_exports_and_loads(methods_run, tmp_path):
    from prunetui import load_pruned
    from prunetui.cli import main

    out = tmp_path / "synflow.pt"
    assert main(["export", str(methods_run.path), str(out), "--round", "2",
                 "--scheme", "synflow"]) == 0
    model = load_pruned(out)
    masks = load_segment(methods_run.segment_checkpoint(0, 2, "synflow")).masks
    for name, mask in masks.items():
        weight = model.net.state_dict()[name]
        assert torch.count_nonzero(weight) <= int(mask.sum()), name
        assert torch.all(weight[~mask.bool()] == 0), name


def test_global_scope_at_init_keeps_magnitude_pruning_total(mnist_root, tmp_path):
    cfg = methods_config(mnist_root, **{"prune.scope": "global", "prune.rounds": 1,
                                        "prune.schemes": ["rewind", "synflow", "snip"]})
    run = run_to_end(cfg, tmp_path, "global")
    records = {(r["round"], r["scheme"]): r["counts"] for r in run.sparsity()}
    totals = {s: sum(alive for alive, _ in records[(1, s)].values())
              for s in ("rewind", "synflow", "snip")}
    assert totals["synflow"] == totals["snip"] == totals["rewind"]
    # ranked over all layers together: the per-layer fractions differ from rewind's
    assert records[(1, "synflow")] != records[(1, "rewind")]
