"""Launch estimates: the plan arithmetic, the calibration cache, the wording, the CLI line.

No timing assertions: how close an estimate comes to a real run is a benchmark
(benchmarks/estimate_accuracy.py), not a unit test.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from prunetui import calibration, config, estimate, store
from prunetui.cli import main
from prunetui.cli.run import estimate_line
from prunetui.data.facesplit import SPLIT_FILE
from tests.conftest import REPO, SHORT_TEST_IMAGES, tiny_overrides
from tests.test_faces_data import make_faces
from tests.test_recent_data import faces_cfg

QUICK = str(REPO / "presets" / "quick.toml")
SHAPE = calibration.DataShape(train_size=600, eval_size=1000, input_shape=(784,), num_classes=10,
                           load_s=2.0)


def timing(**kw) -> calibration.Timing:
    values = {"per_step_s": 0.01, "eval_example_s": 1e-4, "checkpoint_s": 0.05, "steps": 10,
              "measured_at": time.time()} | kw
    return calibration.Timing(**values)


def small_config(tmp_path, **extra) -> config.Config:
    values = {"data.root": str(tmp_path / "data"), "train.iterations": 30,
              "train.eval_every": 10, "train.batch_size": 60, "train.device": "cpu",
              "prune.rounds": 2, "prune.schemes": ["keep", "reinit", "rewind"]} | extra
    return config.apply_overrides(config.Config(), list(values.items()))


class FakeMeasure:
    """A timing source that counts its calls (what the cache must spare)."""

    def __init__(self, shape=SHAPE, timing_=None) -> None:
        self.shape, self.timing, self.calls = shape, timing_ or timing(), []

    def __call__(self, cfg, device, threads, precision):
        self.calls.append((cfg.train.batch_size, str(device), threads, precision))
        return self.shape, self.timing


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_plan_multiplies_steps_evaluations_and_checkpoints(tmp_path):
    cfg = small_config(tmp_path)
    found = estimate.estimate(cfg, threads=2, precision="fp32", measure_fn=FakeMeasure())
    # 10 iterations per epoch; a segment: 30 steps, 3 evaluations of 1000 examples, 2 epoch
    # checkpoints and the final one; 7 segments (dense, then 2 rounds x 3 schemes).
    segment = 30 * 0.01 + 3 * 1000 * 1e-4 + 3 * 0.05
    assert found.segments == 7 and found.iterations == 30 and found.evaluations == 3
    assert found.seconds == pytest.approx(2.0 + 7 * segment)
    assert found.eval_s == pytest.approx(0.1) and found.per_step_s == 0.01
    assert (found.source, found.device, found.threads, found.steps) == ("measured", "cpu", 2, 10)
    # Epochs instead of iterations, an evaluation that does not divide them: one at the end too.
    cfg = small_config(tmp_path, **{"train.epochs": 2, "train.eval_every": 7})
    found = estimate.estimate(cfg, threads=2, precision="fp32", segments=3,
                              measure_fn=FakeMeasure())
    assert (found.iterations, found.evaluations, found.segments) == (20, 3, 3)
    assert found.seconds == pytest.approx(2.0 + 3 * (20 * 0.01 + 3 * 0.1 + 2 * 0.05))


def test_a_second_estimate_uses_the_cache_and_another_batch_size_does_not(tmp_path,
                                                                          cache_home):
    fake = FakeMeasure()
    cfg = small_config(tmp_path)
    first = estimate.estimate(cfg, threads=2, precision="fp32", measure_fn=fake)
    again = estimate.estimate(cfg, threads=2, precision="fp32", measure_fn=fake)
    assert len(fake.calls) == 1 and again.source == "cached"
    assert again.seconds == pytest.approx(first.seconds)
    path = cache_home / "prunetui" / "calibration.json"
    assert calibration.cache_path() == path and json.loads(path.read_text())["timing"]
    # More rounds: the same network and data, the same calibration, more segments.
    longer = estimate.estimate(small_config(tmp_path, **{"prune.rounds": 4}), threads=2,
                               precision="fp32", measure_fn=fake)
    assert len(fake.calls) == 1 and longer.segments == 13
    for changed in ({"train.batch_size": 30}, {"train.optimizer": "sgd"}):
        estimate.estimate(small_config(tmp_path, **changed), threads=2, precision="fp32",
                          measure_fn=fake)
    estimate.estimate(cfg, threads=1, precision="fp32", measure_fn=fake)
    assert [c[0] for c in fake.calls] == [60, 30, 60, 60] and fake.calls[-1][2] == 1


def test_stale_or_damaged_calibrations_are_measured_again(tmp_path, cache_home):
    cfg = small_config(tmp_path)
    old = FakeMeasure(timing_=timing(measured_at=time.time() - calibration.MAX_AGE_S - 1))
    estimate.estimate(cfg, threads=2, precision="fp32", measure_fn=old)
    fresh = FakeMeasure()
    estimate.estimate(cfg, threads=2, precision="fp32", measure_fn=fresh)
    assert len(fresh.calls) == 1
    path = cache_home / "prunetui" / "calibration.json"
    path.write_text("{not json")
    estimate.estimate(cfg, threads=2, precision="fp32", measure_fn=fresh)
    assert len(fresh.calls) == 2 and json.loads(path.read_text())["version"] == 1


@pytest.mark.parametrize(("seconds", "text"), [
    (0.2, "about 1 s"), (45.4, "about 45 s"), (59.7, "about 1 min"), (80, "about 1 min 20 s"),
    (128, "about 2 min 10 s"), (600, "about 10 min"), (3000, "about 50 min"),
    (3590, "about 1 h"), (5 * 3600, "about 5 h"), (9000, "about 2 h 30 min"),
    (30 * 3600, "about 30 h"), (3 * 86400, "about 3 days")])
def test_format_duration(seconds, text):
    assert estimate.format_duration(seconds) == text


def test_describe_names_device_threads_and_how_it_was_timed():
    found = estimate.Estimate(80, 0.004, 0.2, 25, 10, "measured", "cpu", threads=2)
    assert found.describe() == "about 1 min 20 s on cpu (2 threads; measured 10 steps)"
    cached = estimate.Estimate(7200, 0.1, 1, 3, 10, "cached", "cpu", threads=1,
                               precision="bf16")
    assert cached.describe(total_segments=7) == (
        "about 2 h on cpu, bf16 for the 3 of 7 trainings left (1 thread; calibrated earlier "
        "on 10 steps)")


def test_the_real_measurement_times_the_configured_run(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "busy_other_since", lambda _: 0.0)  # however busy the box is
    cfg = config.apply_overrides(config.Config(), tiny_overrides(mnist_root))
    found = estimate.estimate(cfg, threads=1, precision="fp32")
    assert found.source == "measured" and found.steps >= estimate.MIN_TIMED_STEPS
    assert found.per_step_s > 0 and found.eval_s > 0 and found.seconds > 0
    shape, _ = estimate.measure(cfg, __import__("torch").device("cpu"), 1, "fp32")
    assert (shape.train_size, shape.eval_size, shape.input_shape) == (
        600, 500 + SHORT_TEST_IMAGES, (784,))
    assert estimate.estimate(cfg, threads=1, precision="fp32").source == "cached"


def test_a_first_decode_that_writes_beside_the_data_is_cached_as_the_next_one_finds_it(
        tmp_path):
    """A fresh faces folder gets its split.json on the first decode, which moves the folder's
    time: the calibration is kept under the key taken after decoding, so the next estimate
    finds it (it measured again before, once per new folder; MNIST's first extraction too)."""
    from prunetui.data import recent

    root = make_faces(tmp_path / "faces", {"ann": 8, "bo": 8}, size=48)
    cfg = faces_cfg(root)

    def decoding(cfg, device, threads, precision):  # what the real measure does first
        recent.load_recent(cfg, keep=False)
        return SHAPE, timing()

    assert estimate.estimate(cfg, threads=1, measure_fn=decoding).source == "measured"
    assert (root / SPLIT_FILE).exists()
    assert estimate.estimate(cfg, threads=1, measure_fn=decoding).source == "cached"


def test_steps_slowed_by_another_process_do_not_move_the_calibration(mnist_root, monkeypatch):
    """Another process took the core during one step in four (each 50 ms instead of 1 ms)
    and during the first evaluation: the calibration is the undisturbed step and evaluation
    (the mean step, 13 ms, made a quick run's estimate 3x too long)."""
    from prunetui import training

    now = [0.0]
    step, evaluate = training.SegmentTrainer._step, training.evaluate
    steps, evaluations = [], []

    def slow_step(self, idx, iteration):
        steps.append(iteration)
        now[0] += 0.050 if len(steps) % 4 == 0 else 0.001
        return step(self, idx, iteration)

    def slow_evaluate(*args, **kwargs):
        evaluations.append(1)
        now[0] += 0.300 if len(evaluations) == 1 else 0.100
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(training.SegmentTrainer, "_step", slow_step)
    monkeypatch.setattr(training, "evaluate", slow_evaluate)
    cfg = config.apply_overrides(config.Config(), tiny_overrides(mnist_root))
    shape, found = estimate.measure(cfg, __import__("torch").device("cpu"), 1, "fp32",
                                    clock=lambda: now[0])
    assert found.per_step_s == pytest.approx(0.001)
    # 10 steps of 1 ms are too short to trust: 0.3 s worth timed again (at most 200 steps).
    assert found.steps == estimate.MAX_TIMED_STEPS == len(steps) - 2 * estimate.WARMUP_STEPS - 10
    assert found.eval_example_s * shape.eval_size == pytest.approx(0.100)


def test_a_calibration_crowded_by_other_processes_is_said_and_never_cached(tmp_path):
    from prunetui import threads

    cores = len(threads.allowed_cpus())
    assert estimate.crowded(timing(busy_other=0.2), threads=2, allowed=2) is False
    assert estimate.crowded(timing(busy_other=0.5), threads=2, allowed=2) is True
    assert estimate.crowded(timing(busy_other=1.2), threads=1, allowed=2) is False
    assert estimate.crowded(timing(busy_other=1.5), threads=1, allowed=2) is True
    cfg = small_config(tmp_path)
    busy = FakeMeasure(timing_=timing(busy_other=float(cores)))
    first = estimate.estimate(cfg, threads=1, precision="fp32", measure_fn=busy)
    again = estimate.estimate(cfg, threads=1, precision="fp32", measure_fn=busy)
    assert len(busy.calls) == 2 and again.source == "measured"
    assert first.describe().endswith(f"(1 thread; measured 10 steps while other processes "
                                     f"kept {cores:g} cores busy)")
    idle = FakeMeasure(timing_=timing(busy_other=0.0))
    estimate.estimate(cfg, threads=1, precision="fp32", measure_fn=idle)
    assert estimate.estimate(cfg, threads=1, precision="fp32", measure_fn=idle).source == "cached"
    assert len(idle.calls) == 1


def run_quick(root, out, *extra) -> list[str]:
    args = ["run", QUICK, "--set", f"data.root={root}", "--set", "data.train_subset=600",
            "--set", "train.iterations=20", "--set", "train.eval_every=10", "--set",
            "prune.rounds=1", "--set", "train.threads=1", "--out", str(out), "--plain", *extra]
    assert main(args) == 0
    return []


def test_run_prints_the_estimate_as_its_second_line(mnist_root, tmp_path, capsys):
    run_quick(mnist_root, tmp_path)
    lines = capsys.readouterr().out.splitlines()
    stamp = r"\d\d:\d\d:\d\d "
    assert re.match(stamp + "starting ", lines[0])
    assert re.match(stamp + r"Estimated time: about \d+ (s|min).* on cpu \(1 thread; ", lines[1])
    assert re.match(stamp + "1 CPU thread", lines[2])
    run_quick(mnist_root, tmp_path, "--no-estimate")
    out = capsys.readouterr().out
    assert "Estimated time" not in out and "1 CPU thread" in out


def test_a_resume_estimates_the_trainings_left(tmp_path, monkeypatch):
    cfg = small_config(tmp_path)
    run = store.new_run(cfg, tmp_path / "models", "half")
    for key in [(0, 0, "dense"), (0, 1, "keep")]:
        path = run.segment_checkpoint(*key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    seen = {}

    def fake(cfg, threads=None, precision=None, segments=None):
        seen.update(threads=threads, segments=segments)
        return estimate.Estimate(42, 0.01, 0.1, segments, 10, "measured", "cpu", threads=2)

    monkeypatch.setattr(estimate, "estimate", fake)
    line = estimate_line(run, threads=2)
    assert seen == {"threads": 2, "segments": 5}
    assert line == ("Estimated time: about 42 s on cpu for the 5 of 7 trainings left "
                    "(2 threads; measured 10 steps)")
    monkeypatch.setattr(estimate, "estimate", lambda *a, **k: 1 / 0)
    assert estimate_line(run).startswith("Estimated time: unknown (ZeroDivisionError")
