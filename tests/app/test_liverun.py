"""The Monitor's progress bars and log lines, from the store and the events of a run."""

from __future__ import annotations

from dataclasses import dataclass, field

from prunetui import store
from prunetui.app.liverun import Live, ProgressRow, log_lines, progress_rows
from prunetui.events import Checkpointed, RunStarted, SegmentFinished, SegmentStarted, TrainProgress
from prunetui.store import SegmentOutcome

Key = tuple[int, int, str]


@dataclass
class StoreView:
    """What progress_rows reads of a RunData (the run store as the Monitor has polled it)."""

    current: Key | None = None
    iterations_per_segment: int | None = 25
    per_epoch: int | None = 10
    total_segments: int | None = 7
    segments_done: int = 0
    state: str = store.RUNNING
    replicates: int = 1
    last_iteration: dict[Key, int] = field(default_factory=dict)
    remaining: dict[Key, float] = field(default_factory=dict)


def rows(data: StoreView, live: Live | None = None) -> dict[str, ProgressRow]:
    return {row.name: row for row in progress_rows(data, live or Live())}  # type: ignore[arg-type]


def test_a_run_not_started_shows_empty_bars():
    shown = rows(StoreView(iterations_per_segment=None, total_segments=None))
    assert shown["run"] == ProgressRow("run", "Run  0 trainings")
    assert shown["segment"] == ProgressRow("segment", "Round: not started")
    assert shown["epoch"] == ProgressRow("epoch", "Epoch")


def test_the_store_places_the_bars_inside_the_current_training():
    key = (0, 1, "rewind")
    shown = rows(StoreView(current=key, segments_done=2, last_iteration={key: 23},
                           remaining={key: 0.8}))
    assert shown["run"] == ProgressRow("run", "Run  2/7 trainings", 2 * 25 + 23, 7 * 25)
    assert shown["segment"].progress == 23 and shown["segment"].total == 25
    assert shown["segment"].label.endswith(" 80.0%")
    # 25 iterations of 10 per epoch: the third epoch is 5 iterations long, 3 of them done
    assert shown["epoch"] == ProgressRow("epoch", "Epoch 3/3", 3, 5)


def test_events_move_the_bars_past_what_the_store_has_seen():
    key = (0, 1, "keep")
    live = Live()
    live.take(RunStarted("r", "r", "mnist", "lenet", ("keep",), 2, 1, 40, 20, "cpu"))
    live.take(TrainProgress(0, 1, "keep", 33, 40, 1, 0.25))
    shown = rows(StoreView(current=key, last_iteration={key: 20}), live)
    assert shown["segment"].progress == 33 and shown["segment"].total == 40
    assert shown["epoch"] == ProgressRow("epoch", "Epoch 2/2 loss 0.250", 13, 20)
    assert live.device == "cpu"


def test_a_finished_run_fills_every_bar():
    key = (0, 2, "rewind")
    shown = rows(StoreView(current=key, segments_done=7, state=store.FINISHED,
                           last_iteration={key: 20}))
    assert shown["run"].progress == shown["run"].total == 7 * 25
    assert shown["segment"].progress == 25


def test_log_lines_say_what_each_event_means():
    assert log_lines(SegmentStarted(0, 1, "rewind", 0.8, iteration=0), 1) == []
    assert log_lines(SegmentStarted(0, 1, "rewind", 0.8, iteration=12), 1) == [
        "round 1 rewind continues at it 12"]
    finished = SegmentFinished(1, 0, "dense", SegmentOutcome(1.0, 30, 0.9712, 0.97), skipped=True)
    assert log_lines(finished, 2) == [
        "rep 2 round 0 dense finished (done before, from its checkpoint): test 97.12% at it 30 "
        "(early stop), 100.0% left"]
    assert log_lines(Checkpointed("resume.pt", 40), 1) == ["checkpoint at it 40"]
    assert log_lines(TrainProgress(0, 0, "dense", 3, 10, 0, 1.0), 1) == []
    started = RunStarted("r", "r", "mnist", "lenet", ("keep", "rewind"), 1, 1, 40, 20, "cpu",
                         cpu="2 CPU threads")
    assert log_lines(started, 1) == ["training on cpu, precision fp32: 1 round, keep, rewind",
                                     "2 CPU threads"]
