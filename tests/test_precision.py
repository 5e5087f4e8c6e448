"""train.precision: the rule (resolve), its validation, the fp32 fallback with a warning, and a
bf16 run that records its precision, is stopped and resumed (keeping the recorded precision)
and ends with the same metrics as an uninterrupted bf16 run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from prunetui import config, precision, store
from prunetui.cli.render import PlainRunView
from prunetui.control import RunControl
from prunetui.events import Evaluated, Log, RunStarted
from prunetui.experiment import Experiment
from prunetui.nets.lenet import LeNet300100
from prunetui.store import new_run
from prunetui.training import evaluate
from tests.conftest import tiny_overrides
from tests.test_training import random_data

needs_bf16 = pytest.mark.skipif(not precision.cpu_bf16_supported(),
                                reason="torch reports no bf16 support on this CPU")


def tiny(root: Path, **extra) -> config.Config:
    extra = {"prune.rounds": 1, "prune.schemes": ["rewind"], **extra}
    return config.apply_overrides(config.Config(), tiny_overrides(root, **extra))


def comparable(run: store.RunDir) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in run.metrics()]


def recorded(run: store.RunDir) -> dict:
    return json.loads((run.path / store.RUNTIME_FILE).read_text())


class Seen:
    """Events of one execute(); stops the run at round 1, iteration 20 when asked to."""

    def __init__(self, control: RunControl | None = None) -> None:
        self.control, self.events = control, []

    def __call__(self, event) -> None:
        self.events.append(event)
        if (self.control is not None and isinstance(event, Evaluated)
                and (event.record["round"], event.record["iteration"]) == (1, 20)):
            self.control.request_stop()

    def of(self, kind) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def finish(cfg: config.Config, out: Path, name: str) -> tuple[store.RunDir, Seen]:
    run, seen = new_run(cfg, out, name), Seen()
    assert Experiment(run, seen).execute() == store.FINISHED
    return run, seen


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)


# ------------------------------------------------------------------ the rule


def test_fp32_is_plain_float32_without_autocast():
    p = precision.resolve("fp32", "cpu")
    assert (p.used, p.autocast, p.warning) == ("fp32", None, "")
    assert precision.autocast_factory(p)().__class__.__name__ == "nullcontext"
    assert p.label == "fp32" and p.record()["precision"] == "fp32"


def test_bf16_where_supported_and_fp32_with_one_warning_where_not(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    p = precision.resolve("bf16", "cpu")
    assert (p.used, p.autocast, p.warning, p.label) == ("bf16", "bfloat16", "", "bf16 (autocast)")
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)
    p = precision.resolve("bf16", "cpu")
    assert (p.used, p.autocast, p.requested) == ("fp32", None, "bf16")
    assert "bf16" in p.warning and "fp32" in p.warning and "\n" not in p.warning
    tf32 = precision.resolve("tf32", "cpu")
    assert tf32.used == "fp32" and "CUDA" in tf32.warning and "\n" not in tf32.warning


def test_a_recorded_precision_wins_and_an_impossible_one_stops(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    p = precision.resolve("fp32", "cpu", recorded="bf16")
    assert (p.used, p.source, p.warning) == ("bf16", "recorded", "")
    assert precision.resolve("bf16", "cpu", recorded="fp32").used == "fp32"
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)
    with pytest.raises(precision.Unavailable, match=r"bf16.*runtime\.json"):
        precision.resolve("bf16", "cpu", recorded="bf16")
    with pytest.raises(precision.Unavailable, match="tf32"):
        precision.resolve("fp32", "cpu", recorded="tf32")


@pytest.mark.parametrize("value", ["fp16", "BF16", 16])
def test_bad_precisions_name_the_key_value_and_choices(value):
    with pytest.raises(config.ConfigError) as err:
        config.apply_overrides(config.Config(), [("train.precision", value)])
    assert err.value.key == "train.precision" and err.value.value == value
    if isinstance(value, str):
        assert "'fp32', 'bf16', 'tf32'" in str(err.value)


def test_default_and_round_trip():
    assert config.Config().train.precision == "fp32"
    cfg = config.apply_overrides(config.Config(), [("train.precision", "bf16")])
    assert config.from_dict(config.to_dict(cfg)).train.precision == "bf16"


def test_evaluation_in_fp32_is_unchanged_and_bf16_is_close():
    model, data = LeNet300100(), random_data()
    plain = evaluate(model, data)
    assert evaluate(model, data, precision.resolve("fp32", "cpu")) == plain
    if precision.cpu_bf16_supported():
        bf16 = evaluate(model, data, precision.resolve("bf16", "cpu"))
        assert bf16.val_loss == pytest.approx(plain.val_loss, rel=0.05)


def test_plain_view_names_the_precision_in_its_first_line():
    out = io.StringIO()
    view = PlainRunView(Console(file=out, width=200))
    view(RunStarted("models/x", "x", "mnist", "lenet-300-100", ("rewind",), 1, 1, 100, 50, "cpu",
                    precision="bf16"))
    assert "on cpu, precision bf16 (autocast):" in out.getvalue().splitlines()[0]


# ------------------------------------------------------------------ in a real run


@pytest.fixture(scope="module")
def fp32_run(mnist_root, tmp_path_factory) -> store.RunDir:
    return finish(tiny(mnist_root), tmp_path_factory.mktemp("fp32"), "fp32")[0]


@pytest.fixture(scope="module")
def bf16_run(mnist_root, tmp_path_factory) -> store.RunDir:
    if not precision.cpu_bf16_supported():
        pytest.skip("torch reports no bf16 support on this CPU")
    return finish(tiny(mnist_root, **{"train.precision": "bf16"}),
                  tmp_path_factory.mktemp("bf16"), "bf16")[0]


def test_fp32_run_records_fp32(fp32_run):
    record = recorded(fp32_run)
    assert (record["precision"], record["autocast"]) == ("fp32", None)


def test_unsupported_bf16_falls_back_to_fp32_with_a_warning(no_bf16, fp32_run, mnist_root,
                                                            tmp_path):
    run, seen = finish(tiny(mnist_root, **{"train.precision": "bf16"}), tmp_path, "fallback")
    warnings = [e.message for e in seen.of(Log) if e.level == "warning"]
    assert len(warnings) == 1 and "training in fp32" in warnings[0]
    assert seen.of(RunStarted)[0].precision == "fp32"
    record = recorded(run)
    assert (record["precision"], record["precision_requested"]) == ("fp32", "bf16")
    assert comparable(run) == comparable(fp32_run)  # fp32 bit for bit


@needs_bf16
def test_bf16_run_records_it_and_trains_differently_from_fp32(bf16_run, fp32_run):
    record = recorded(bf16_run)
    assert (record["precision"], record["autocast"]) == ("bf16", "bfloat16")
    assert comparable(bf16_run) != comparable(fp32_run)
    assert comparable(bf16_run)[-1]["test_acc"] > 0.5


@needs_bf16
def test_bf16_stop_and_resume_keeps_the_recorded_precision(bf16_run, mnist_root, tmp_path):
    cfg = tiny(mnist_root, **{"train.precision": "bf16"})
    run, first = new_run(cfg, tmp_path, "stopped"), Seen(RunControl())
    assert Experiment(run, first, first.control).execute() == store.INTERRUPTED
    assert first.of(RunStarted)[0].precision == "bf16"
    assert recorded(run)["precision"] == "bf16"
    # The resume is told fp32 (as an edited config would): the recorded bf16 wins.
    fp32_cfg = config.apply_overrides(cfg, [("train.precision", "fp32")])
    second = Seen()
    assert Experiment(run, second, cfg=fp32_cfg).execute() == store.FINISHED
    started = second.of(RunStarted)[0]
    assert started.resumed and started.precision == "bf16"
    assert not [e for e in second.of(Log) if e.level == "warning"]
    assert recorded(run)["precision"] == "bf16"
    assert comparable(run) == comparable(bf16_run)


@needs_bf16
def test_resume_where_the_recorded_precision_is_impossible_stops(mnist_root, tmp_path,
                                                                 monkeypatch):
    run, first = new_run(tiny(mnist_root, **{"train.precision": "bf16"}), tmp_path, "moved"), \
        Seen(RunControl())
    assert Experiment(run, first, first.control).execute() == store.INTERRUPTED
    rows = run.metrics()
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)
    with pytest.raises(store.CannotResume, match="trained in bf16"):
        Experiment(run).execute()
    status = run.read_status()
    assert status.state == store.INTERRUPTED and "bf16" in status.message
    assert recorded(run)["precision"] == "bf16" and run.metrics() == rows
    assert run.resume_checkpoint().exists()
