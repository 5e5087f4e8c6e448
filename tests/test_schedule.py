"""Learning-rate schedules: closed forms against torch's schedulers, what each scheme retrains
with, and the rate the loop really sets (bad settings: tests/data/bad_configs, test_config)."""

from __future__ import annotations

import math

import pytest
import torch

from prunetui import config
from prunetui.config import ConfigError, TrainConfig, parse_scheme
from prunetui.schedule import Schedule, SegmentRates, run_schedule, segment_rates
from prunetui.segments import segment_iterations


def torch_rates(scheduler_factory, steps: int, lr: float = 0.1) -> list[float]:
    """The rate torch's own scheduler uses at each step."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = scheduler_factory(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_step_schedule_equals_torch_multisteplr():
    ours = Schedule(0.1, "step", (30, 70), 0.1, 0, 100)
    theirs = torch_rates(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [30, 70], 0.1), 100)
    assert [ours.rate(i) for i in range(100)] == pytest.approx(theirs, rel=1e-12)


def test_cosine_schedule_equals_torch_cosineannealinglr():
    ours = Schedule(0.1, "cosine", length=100)
    theirs = torch_rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 100), 100)
    assert [ours.rate(i) for i in range(100)] == pytest.approx(theirs, rel=1e-9, abs=1e-15)


def test_warmup_rises_linearly_then_the_schedule_takes_over():
    s = Schedule(0.2, "step", (50,), 0.5, warmup=4, length=100)
    assert [s.rate(i) for i in range(6)] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    assert s.rate(50) == pytest.approx(0.1)
    cosine = Schedule(1.0, "cosine", warmup=10, length=110)
    assert cosine.rate(10) == pytest.approx(1.0)
    assert cosine.rate(60) == pytest.approx(0.5)
    assert cosine.final_rate == pytest.approx(0.5 * (1 + math.cos(math.pi * 99 / 100)))


def test_constant_is_the_learning_rate_throughout():
    s = Schedule(1.2e-3, length=50)
    assert {s.rate(i) for i in range(50)} == {1.2e-3}


def test_milestones_in_epochs_become_iterations():
    train = TrainConfig(lr=0.1, schedule="step", milestones=(2, 3), epochs=4, warmup=5)
    s = run_schedule(train, per_epoch=10)
    assert (s.milestones, s.length, s.warmup) == ((20, 30), 40, 5)


def test_warmup_longer_than_an_epoch_sized_training_is_refused():
    train = TrainConfig(epochs=1, warmup=50)
    with pytest.raises(ConfigError, match=r"train\.warmup"):
        run_schedule(train, per_epoch=10)


def test_each_scheme_retrains_at_its_own_rates():
    schedule = Schedule(0.1, "step", (40, 80), 0.1, 0, 100)
    keep = segment_rates(parse_scheme("keep"), schedule)
    dense = segment_rates(None, schedule)
    assert [keep.at(i) for i in range(100)] == [dense.at(i) for i in range(100)]
    finetune = segment_rates(parse_scheme("finetune"), schedule)
    assert [finetune.at(i) for i in range(100)] == pytest.approx([0.001] * 100)  # final rate
    assert segment_rates(parse_scheme("finetune"), schedule, 0.02).at(0) == 0.02
    lr_rewind = segment_rates(parse_scheme("lr-rewind:60"), schedule)
    assert [lr_rewind.at(i) for i in range(40)] == [schedule.rate(60 + i) for i in range(40)]
    assert segment_rates(parse_scheme("lr-rewind"), schedule).at(0) == 0.1


def test_lr_rewind_k_trains_the_rest_of_the_schedule():
    assert segment_iterations("lr-rewind:300", 1000) == 700
    assert segment_iterations("lr-rewind", 1000) == 1000
    assert segment_iterations("rewind:300", 1000) == 1000  # weights from K, the full round
    with pytest.raises(ConfigError, match="lr-rewind:1000"):
        segment_iterations("lr-rewind:1000", 1000)


def test_the_loop_sets_the_schedule_rate_before_each_step(mnist_root):
    from prunetui.control import RunControl
    from prunetui.data import load_data
    from prunetui.nets import build_model
    from prunetui.training import LoopState, SegmentHooks, SegmentTrainer

    cfg = config.from_dict({"data": {"root": str(mnist_root), "train_subset": 120,
                                     "validation": 60},
                            "train": {"optimizer": "sgd", "lr": 0.1, "iterations": 12,
                                      "batch_size": 20, "eval_every": 12, "schedule": "step",
                                      "milestones": [5, 9], "gamma": 0.5, "warmup": 2}})
    data = load_data(cfg)
    model = build_model(cfg.model, data.input_shape, data.num_classes)
    masks = {name: torch.ones_like(p) for name, p in model.named_parameters()
             if name.endswith("weight")}
    schedule = run_schedule(cfg.train, 6)
    trainer = SegmentTrainer(model, data, cfg.train, masks, 0, 12, RunControl(),
                             rates=SegmentRates(schedule, offset=1))
    used = []
    original_step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        used.append(trainer.optimizer.param_groups[0]["lr"])
        return original_step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    nothing = lambda *a: None  # noqa: E731
    loop = trainer.run(LoopState(), SegmentHooks(nothing, nothing, nothing))
    assert loop.iteration == 12
    assert used == pytest.approx([schedule.rate(1 + i) for i in range(12)])
    saved = trainer.state_dict(loop)["optimizer"]["param_groups"][0]["lr"]
    assert saved == pytest.approx(schedule.rate(12))
