"""Setup's launch safety: it opens on the quick preset or the last config launched, shows the
estimate as the settings change, and asks before a launch estimated at over an hour."""

from __future__ import annotations

import threading
import time

import pytest

from prunetui import config, estimate
from prunetui.app.app import PruneApp
from prunetui.app.screens.modals import LongLaunchScreen
from prunetui.app.screens.setup import LAST_CONFIG, SetupScreen
from tests.app.conftest import SIZE, focus_by_tab, tiny_config, type_text, wait_for


class FakeEstimate:
    """Stands in for prunetui.estimate.estimate: ``seconds`` per run, after ``delay``."""

    def __init__(self, seconds: float, delay: float = 0.0) -> None:
        self.seconds, self.delay, self.calls = seconds, delay, []
        self.threads: set[str] = set()

    def __call__(self, cfg, **kw):
        self.calls.append(cfg)
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return estimate.Estimate(self.seconds, 0.01, 0.1, 25, 10, "measured", "cpu", threads=2)


@pytest.fixture
def launches(monkeypatch):
    """PruneApp.launch recorded instead of run (no run folders, no detached processes)."""
    calls = []

    async def launch(self, cfg, name=None, detached=False):
        calls.append((cfg, detached))

    monkeypatch.setattr(PruneApp, "launch", launch)
    return calls


def estimate_text(setup: SetupScreen) -> str:
    return str(setup.query_one("#setup-estimate").render())


async def open_setup(pilot) -> SetupScreen:
    setup = pilot.app.screen
    assert isinstance(setup, SetupScreen)
    await wait_for(pilot, lambda: "about" in estimate_text(setup), 10, "the estimate")
    return setup


async def test_setup_opens_on_quick_and_shows_its_estimate(tmp_path, monkeypatch, mnist_root):
    fake = FakeEstimate(90, delay=1.5)
    monkeypatch.setattr(estimate, "estimate", fake)
    app = PruneApp(models_dir=tmp_path / "models", data_root=mnist_root, start="setup")
    async with app.run_test(size=SIZE) as pilot:
        setup = app.screen
        await pilot.pause()
        assert "estimating" in estimate_text(setup)  # the event loop goes on meanwhile
        await open_setup(pilot)
        values = setup.values()
        assert (values["train.iterations"], values["prune.rounds"]) == ("500", "8")
        assert setup.cfg is not None and setup.cfg.data.root == str(mnist_root)
        assert "Estimated time: about 1 min 30 s on cpu (2 threads" in estimate_text(setup)
        assert fake.calls == [setup.cfg] and "MainThread" not in fake.threads
        # A change re-estimates once the typing settles; going back answers from memory.
        await focus_by_tab(pilot, "f-prune-rounds")
        await pilot.press("end", "ctrl+u")
        await type_text(pilot, "3")
        await wait_for(pilot, lambda: len(fake.calls) == 2 and "about" in estimate_text(setup),
                       10, "the second estimate")
        assert fake.calls[-1].prune.rounds == 3
        await pilot.press("end", "ctrl+u")
        await type_text(pilot, "8")
        await pilot.pause(0.8)
        assert len(fake.calls) == 2 and "about 1 min 30 s" in estimate_text(setup)


async def test_setup_opens_on_the_last_config_launched(tmp_path, monkeypatch, mnist_root,
                                                      launches):
    monkeypatch.setattr(estimate, "estimate", FakeEstimate(20))
    models = tmp_path / "models"
    models.mkdir()
    config.save(tiny_config(mnist_root), models / LAST_CONFIG)
    app = PruneApp(models_dir=models, data_root=mnist_root, start="setup")
    async with app.run_test(size=SIZE) as pilot:
        setup = await open_setup(pilot)
        assert setup.values()["train.iterations"] == "20"
        await focus_by_tab(pilot, "f-train-iterations")
        await pilot.press("end", "ctrl+u")
        await type_text(pilot, "40")
        await pilot.pause(0.1)
        await pilot.press("ctrl+l")  # short: launches at once, no question
        await wait_for(pilot, lambda: bool(launches), 10, "the launch")
        assert not isinstance(app.screen, LongLaunchScreen)
        assert launches[0][0].train.iterations == 40 and launches[0][1] is False
    assert config.load(models / LAST_CONFIG).train.iterations == 40


@pytest.mark.parametrize(("key", "expected"), [("d", [True]), ("h", [False]), ("escape", [])])
async def test_a_launch_estimated_over_an_hour_asks_and_offers_detached(
        tmp_path, monkeypatch, mnist_root, launches, key, expected):
    monkeypatch.setattr(estimate, "estimate", FakeEstimate(2 * 3600))
    app = PruneApp(models_dir=tmp_path / "models", data_root=mnist_root, start="setup")
    async with app.run_test(size=SIZE) as pilot:
        setup = await open_setup(pilot)
        assert "about 2 h" in estimate_text(setup)
        assert setup.query_one("#setup-estimate").has_class("-long")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, LongLaunchScreen), 5, "the question")
        question = str(app.screen.query_one(".question").render())
        assert "estimated at about 2 h on cpu" in question
        assert app.focused is not None and app.focused.id == "detached"
        await pilot.press(key)
        await pilot.pause(0.2)
        assert [detached for _, detached in launches] == expected
        assert isinstance(app.screen, SetupScreen)
    assert (tmp_path / "models" / LAST_CONFIG).exists() == bool(expected)
