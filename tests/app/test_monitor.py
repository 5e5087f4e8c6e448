"""Monitor: pause, quitting while a run trains (asks, then checkpoints), following a run that
another process trains (attach on start-up, stop it with SIGINT), chart redraw throttling."""

from __future__ import annotations

import subprocess
import sys
import time

from prunetui import store
from prunetui.app.app import PruneApp
from prunetui.app.screens.modals import ConfirmScreen
from prunetui.app.screens.monitor import MonitorScreen
from prunetui.app.widgets.charts import AccuracyChart, LotteryChart
from tests.app.conftest import SIZE, tiny_config, wait_for
from tests.conftest import REPO


async def test_pause_and_quit_while_training_asks_then_checkpoints(models, mnist_root):
    cfg = tiny_config(mnist_root, **{"train.iterations": 5000})
    app = PruneApp(models_dir=models, data_root=mnist_root, start="setup")
    async with app.run_test(size=SIZE) as pilot:
        run = await app.launch(cfg)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor.training
        await wait_for(pilot, lambda: monitor.data.evaluations > 0, 60, "an evaluation")
        await pilot.press("p")
        assert monitor.control.paused
        await pilot.press("p")
        assert not monitor.control.paused
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the question")
        await pilot.press("n")
        await pilot.pause()
        assert monitor.training
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.return_code is not None, 30, "the app to exit")
    assert run.read_status().state == store.INTERRUPTED
    assert run.resume_checkpoint().exists()


async def test_follows_a_run_trained_by_another_process_and_stops_it(models, mnist_root):
    cfg = tiny_config(mnist_root, **{"train.iterations": 5000})
    from prunetui.store import new_run

    run = new_run(cfg, models, "elsewhere")
    child = subprocess.Popen([sys.executable, "-m", "prunetui", "run", "--resume", str(run.path),
                              "--plain"], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not run.metrics_path.exists() or not run.metrics_path.stat().st_size:
            assert time.monotonic() < deadline and child.poll() is None, "child did not start"
            time.sleep(0.2)
        app = PruneApp(models_dir=models, data_root=mnist_root)  # no start screen given
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                           and app.screen.data is not None, 10,
                           "the Monitor to follow the running run")
            monitor = app.screen
            assert monitor.data.run.path == run.path and not monitor.training
            assert monitor.data.state == store.RUNNING
            seen = monitor.data.evaluations
            await wait_for(pilot, lambda: monitor.data.evaluations > seen, 30, "new points")
            status = str(monitor.query_one("#monitor-status").render())
            assert f"attached, pid {child.pid}" in status
            await pilot.press("x")  # SIGINT: the other process checkpoints and exits
            await wait_for(pilot, lambda: monitor.data.state == store.INTERRUPTED, 30,
                           "the run to stop")
        assert child.wait(30) == 130
        assert run.resume_checkpoint().exists()
    finally:
        if child.poll() is None:
            child.kill()


async def test_charts_redraw_at_most_about_twice_a_second(models, mnist_root):
    from prunetui.app.rundata import RunData

    app = PruneApp(models_dir=models, data_root=mnist_root, start="monitor")
    async with app.run_test(size=SIZE) as pilot:
        chart = app.screen.query_one(AccuracyChart)
        await pilot.pause(0.6)
        before = chart.builds
        data = RunData(models / "none")
        start, calls = time.monotonic(), 0
        while time.monotonic() - start < 2.0:
            data.version += 1  # as after each read that found something new
            chart.show([data])  # a flood of updates
            calls += 1
            await pilot.pause(0.01)
        await pilot.pause(0.6)
        elapsed = time.monotonic() - start
        builds = chart.builds - before
        assert calls > 20 and 1 <= builds <= 2 * elapsed + 1, (calls, builds, elapsed)
        # Nothing new to draw: no rebuild at all (the Lottery plot, while rows arrive that
        # leave every early stop where it was).
        lottery = app.screen.query_one(LotteryChart)
        lottery.show([data])
        await pilot.pause(0.6)
        before = lottery.builds
        for _ in range(5):
            data.version += 1
            lottery.show([data])
            await pilot.pause(0.6)
        assert lottery.builds == before


async def test_hangup_checkpoints_a_run_training_in_the_app_then_exits(models, mnist_root):
    """What SIGHUP (SSH drop) and SIGTERM do: stop at the next batch with a checkpoint."""
    import signal

    cfg = tiny_config(mnist_root, **{"train.iterations": 5000})
    app = PruneApp(models_dir=models, data_root=mnist_root, start="setup")
    async with app.run_test(size=SIZE) as pilot:
        run = await app.launch(cfg)
        monitor = app.screen
        await wait_for(pilot, lambda: monitor.data.evaluations > 0, 60, "an evaluation")
        app._on_hangup(signal.SIGHUP)  # what the loop's signal handler calls
        app.hangup_timer.cancel()  # launch_app does this once run() returns
        assert not monitor.training
        await wait_for(pilot, lambda: app.return_code is not None, 10, "the exit")
    assert app.return_code == 128 + signal.SIGHUP
    assert run.read_status().state == store.INTERRUPTED
    assert run.resume_checkpoint().exists()
