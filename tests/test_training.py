"""The segment loop: masks hold through optimizer steps, stop and pause work, data order."""

from __future__ import annotations

import threading

import pytest
import torch

from prunetui import pruning
from prunetui.config import TrainConfig
from prunetui.data import TensorData
from prunetui.nets import prunable_layers
from prunetui.nets.lenet import LeNet300100
from prunetui.training import LoopState, RunControl, SegmentHooks, SegmentTrainer, Stopped


def random_data(n: int = 600) -> TensorData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 784, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return TensorData("random", 10, (784,), x, y, x[:100], y[:100], x[:100], y[:100])


def half_pruned(model) -> pruning.Masks:
    layers = prunable_layers(model)
    weights = dict(model.state_dict())
    rates = pruning.PruneRates(rate=0.5, output_rate=0.5)
    return pruning.prune(pruning.magnitude_scores(weights, layers),
                         pruning.dense_masks(weights, layers), layers, rates, "layer")


def hooks(**kw) -> SegmentHooks:
    base = dict(on_eval=lambda *a: None, on_checkpoint=lambda loop: None,
                on_progress=lambda *a: None)
    base.update(kw)
    return SegmentHooks(**base)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_pruned_weights_stay_exactly_zero_after_every_step(optimizer):
    torch.manual_seed(0)
    model = LeNet300100()
    masks = half_pruned(model)
    cfg = TrainConfig(optimizer=optimizer, lr=0.05, momentum=0.9, batch_size=30,
                      iterations=40, eval_every=20)
    trainer = SegmentTrainer(model, random_data(), cfg, masks, seed=1, total_iterations=40,
                             control=RunControl())
    params = dict(model.named_parameters())
    checked = []

    def check(iteration: int) -> None:
        for name, mask in masks.items():
            assert torch.all(params[name][mask == 0] == 0), (name, iteration)
            # The optimizer's state is not zero there: it is the re-applied mask that holds.
        checked.append(iteration)

    trainer.run(LoopState(), hooks(on_iteration=check))
    assert checked == list(range(1, 41))
    state = trainer.optimizer.state[params["fc1.weight"]]
    key = "exp_avg" if optimizer == "adam" else "momentum_buffer"
    assert state[key][masks["fc1.weight"] == 0].abs().sum() > 0
    # Surviving weights did train.
    assert torch.count_nonzero(params["fc1.weight"]) == int(masks["fc1.weight"].sum())


def test_stop_request_checkpoints_then_raises():
    model = LeNet300100()
    control = RunControl()
    cfg = TrainConfig(batch_size=30, iterations=1000, eval_every=1000)
    trainer = SegmentTrainer(model, random_data(), cfg, half_pruned(model), 1, 1000, control)
    saved = []

    def on_iteration(it):
        if it == 7:
            control.request_stop()

    with pytest.raises(Stopped):
        trainer.run(LoopState(), hooks(on_iteration=on_iteration,
                                       on_checkpoint=lambda loop: saved.append(loop.iteration)))
    assert saved == [7]


def test_pause_blocks_until_resumed():
    model = LeNet300100()
    control = RunControl()
    cfg = TrainConfig(batch_size=30, iterations=20, eval_every=20)
    trainer = SegmentTrainer(model, random_data(), cfg, half_pruned(model), 1, 20, control)
    reached = threading.Event()

    def on_iteration(it):
        if it == 5:
            control.pause()
            reached.set()

    thread = threading.Thread(target=trainer.run, args=(LoopState(), hooks(
        on_iteration=on_iteration)))
    thread.start()
    assert reached.wait(30)
    thread.join(0.5)
    assert thread.is_alive() and control.paused
    control.resume()
    thread.join(30)
    assert not thread.is_alive()


def test_evaluations_at_every_interval_and_the_last_iteration():
    model = LeNet300100()
    cfg = TrainConfig(batch_size=30, iterations=25, eval_every=10)
    evals = []
    trainer = SegmentTrainer(model, random_data(), cfg, half_pruned(model), 1, 25, RunControl())
    trainer.run(LoopState(), hooks(on_eval=lambda it, loss, r: evals.append((it, r))))
    assert [it for it, _ in evals] == [10, 20, 25]
    assert all(0 <= r.val_acc <= 1 and r.val_loss > 0 for _, r in evals)
