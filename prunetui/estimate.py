"""Launch estimates: roughly how long a run will take on this device, known before it trains.

A *calibration* times, on the run's network and data, a few steps of SegmentTrainer itself
(masks re-applied, the run's precision and threads), one evaluation and one checkpoint write;
:func:`plan_seconds` multiplies it by the plan, plus loading the data once (not counted:
Python start-up and torch import, 2-3 s; pruning between rounds). Calibrations are cached
(:mod:`prunetui.calibration`, with dataset sizes): a second estimate of a similar config is
instant. torch is imported lazily; no user interface is imported.

Other processes. A calibration lasts a second or so; a run, minutes. Beside another busy
process each OpenMP step waits for a descheduled thread: on 2 cores with 2 threads and one
other busy process, LeNet steps took 20 ms instead of 2 ms. A calibration timed while another
program briefly ran (load 0.5 on 2 cores) is the likely cause of the quick preset's 173 s
estimate for a 62 s run (issue #21). Nothing else differs within one process: calibrations
inside ``prunetui run`` and in a fresh process agree at the same load.
So, on a CPU, every timed step is clocked on its own and the *median* counts (interference
in less than half of them does not move it); of two evaluations timed the lower counts (the
first also pays first-call costs); and the other processes' CPU use while timing is measured
(/proc/stat, as for the thread choice): a calibration they crowded says so in its estimate
and is not cached, so it does not speak for later runs (a cached one was reused for 7 days).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunetui.calibration import (
    DataShape,
    Timing,
    cache_path,
    cached_entries,
    data_digest,
    read_cache,
    timing_key,
    write_cache,
)
from prunetui.data.recent import load_recent

if TYPE_CHECKING:
    from prunetui.config import Config

WARMUP_STEPS = 3
MIN_TIMED_STEPS = 10
MAX_TIMED_STEPS = 200
TARGET_TIMED_S = 0.3  # fast steps (LeNet: ~3 ms) are timed for at least this long
CROWDED_SLACK_CORES = 0.25  # others' CPU use beyond the free cores that marks one crowded


@dataclass(frozen=True)
class Estimate:
    seconds: float
    per_step_s: float
    eval_s: float  # one evaluation (validation + test)
    segments: int  # trainings counted (on resume: those left)
    steps: int  # training steps timed for the calibration
    source: str  # "measured" | "cached"
    device: str
    threads: int = 0
    iterations: int = 0  # per segment
    evaluations: int = 0  # per segment
    precision: str = "fp32"
    crowded_by: float = 0.0  # > 0: other processes took this many cores while timing

    def describe(self, total_segments: int | None = None) -> str:
        """``about 1 min 20 s on cpu (2 threads; measured 10 steps)``."""
        where = self.device + ("" if self.precision == "fp32" else f", {self.precision}")
        left = (f" for the {self.segments} of {total_segments} trainings left"
                if total_segments not in (None, self.segments) else "")
        how = (f"measured {self.steps} steps" if self.source == "measured"
               else f"calibrated earlier on {self.steps} steps")
        if self.crowded_by:
            how += f" while other processes kept {self.crowded_by:g} cores busy"
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}; "
        return f"{format_duration(self.seconds)} on {where}{left} ({threads}{how})"


def format_duration(seconds: float) -> str:
    """Rough: ``about 45 s``, ``about 1 min 20 s``, ``about 2 h 30 min``, ``about 5 h``."""
    s = max(1.0, seconds)
    if s < 59.5:
        return f"about {round(s)} s"
    if s < 595:
        minutes, rest = divmod(round(s / 10) * 10, 60)
        return f"about {minutes} min" + (f" {rest} s" if rest else "")
    if s < 3570:
        return f"about {round(s / 60)} min"
    if s < 10 * 3600 - 300:
        hours, rest = divmod(round(s / 600) * 10, 60)
        return f"about {hours} h" + (f" {rest} min" if rest else "")
    if s < 47.5 * 3600:
        return f"about {round(s / 3600)} h"
    return f"about {round(s / 86400, 1):g} days"


def per_segment(cfg: Config, shape: DataShape) -> tuple[int, int, int]:
    """(iterations, evaluations, checkpoints) of one segment, as SegmentTrainer runs it."""
    from prunetui.segments import total_iterations
    from prunetui.training import iterations_per_epoch

    per_epoch = iterations_per_epoch(shape.train_size, cfg.train.batch_size)
    iterations = total_iterations(cfg, per_epoch)
    evaluations = math.ceil(iterations / cfg.train.eval_every)  # and one at the end
    checkpoints = (iterations - 1) // per_epoch + 1  # each epoch's end, and the final one
    return iterations, evaluations, checkpoints


def plan_seconds(cfg: Config, shape: DataShape, timing: Timing, segments: int) -> float:
    iterations, evaluations, checkpoints = per_segment(cfg, shape)
    segment = (iterations * timing.per_step_s
               + evaluations * timing.eval_example_s * shape.eval_size
               + checkpoints * timing.checkpoint_s)
    return shape.load_s + segments * segment


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's CPU threads set to ``count`` for the block, then put back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count if count > 0 else before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_ticks() -> tuple[dict[int, tuple[int, int]], int] | None:
    """Per-CPU (busy, total) ticks and this process's own (None where /proc cannot be read)."""
    from prunetui import threads as cpu_threads

    try:
        return (cpu_threads.parse_proc_stat(Path("/proc/stat").read_text()),
                cpu_threads.parse_own_ticks(Path("/proc/self/stat").read_text()))
    except (OSError, ValueError, IndexError):
        return None


def busy_other_since(before: tuple[dict[int, tuple[int, int]], int] | None) -> float:
    """Cores' worth of CPU that other processes used since ``before`` (0.0: unknown)."""
    from prunetui import threads as cpu_threads

    after = cpu_ticks()
    if before is None or after is None:
        return 0.0
    return round(cpu_threads.busy_other_cores(before[0], after[0], cpu_threads.allowed_cpus(),
                                              after[1] - before[1]), 2)


def crowded(timing: Timing, threads: int, allowed: int | None = None) -> bool:
    """Did other processes, while it was timed, use more than the cores its threads left free
    (a quarter of a core of slack: a desktop's background)? Then its steps waited for them."""
    from prunetui import threads as cpu_threads

    allowed = len(cpu_threads.allowed_cpus()) if allowed is None else allowed
    return timing.busy_other > allowed - max(1, threads) + CROWDED_SLACK_CORES


def step_seconds(stamps: list[float]) -> float:
    """Seconds per step from the clock after each step: the median step (a burst of another
    process in less than half of them leaves it where the run's many steps will be)."""
    return statistics.median(b - a for a, b in itertools.pairwise(stamps))


def measure(cfg: Config, device: Any, threads: int, precision: str,
            clock: Callable[[], float] = time.perf_counter) -> tuple[DataShape, Timing]:
    """Time the configured run's own training steps, its evaluation and one checkpoint."""
    import torch

    from prunetui import precision as precisions
    from prunetui.control import RunControl
    from prunetui.nets import build_model, layers_for
    from prunetui.pruning import dense_masks
    from prunetui.store import save_checkpoint
    from prunetui.training import LoopState, SegmentHooks, SegmentTrainer

    cpu_data, load_s = load_recent(cfg)
    prec = precisions.resolve(precision, device.type)
    with torch_threads(threads if device.type == "cpu" else 0):
        data = cpu_data.to(device)
        model = build_model(cfg.model, data.input_shape, data.num_classes).to(device)
        params = dict(model.named_parameters())
        masks = dense_masks(params, layers_for(cfg, model))

        def timed_pass(steps: int) -> tuple[float, float, SegmentTrainer]:
            total = WARMUP_STEPS + steps
            train = replace(cfg.train, eval_every=total + 1)  # one evaluation: at the end
            trainer = SegmentTrainer(model, data, train, masks, 0, total, RunControl(), prec)
            stamps: list[float] = []  # after steps WARMUP_STEPS.. (on CUDA: that and total)
            evaluated: list[float] = []

            def after_step(iteration: int) -> None:
                if iteration >= WARMUP_STEPS and (device.type == "cpu"
                                                  or iteration in (WARMUP_STEPS, total)):
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    stamps.append(clock())

            def after_eval(*_: object) -> None:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                evaluated.append(clock())

            trainer.run(LoopState(), SegmentHooks(
                on_eval=after_eval, on_checkpoint=lambda _: None,
                on_progress=lambda *_: None, on_iteration=after_step))
            # CPU steps end when the call returns: each is clocked; CUDA's run ahead of the
            # host, so only the whole window is (synchronised at both ends).
            step = (step_seconds(stamps) if device.type == "cpu"
                    else (stamps[-1] - stamps[0]) / steps)
            return step, evaluated[0] - stamps[-1], trainer

        ticks = cpu_ticks()
        steps = MIN_TIMED_STEPS
        step_s, eval_s, trainer = timed_pass(steps)
        if step_s * steps < TARGET_TIMED_S:  # too short to trust: time more steps
            steps = min(MAX_TIMED_STEPS, math.ceil(TARGET_TIMED_S / max(step_s, 1e-6)))
            step_s, again_s, trainer = timed_pass(steps)
            eval_s = min(eval_s, again_s)  # the same work twice: the undisturbed one
        busy_other = busy_other_since(ticks)
        with tempfile.TemporaryDirectory(prefix="prunetui-estimate-") as tmp:
            start = clock()
            state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            save_checkpoint({"weights": state, "trainer": trainer.state_dict(LoopState())},
                            Path(tmp) / "resume.pt")
            checkpoint_s = clock() - start
    shape = DataShape(data.train_size, len(data.val_x) + len(data.test_x), data.input_shape,
                      data.num_classes, load_s)
    return shape, Timing(step_s, eval_s / max(1, shape.eval_size), checkpoint_s, steps,
                         time.time(), busy_other)


def estimate(cfg: Config, *, threads: int | None = None, precision: str | None = None,
             segments: int | None = None, cache: Path | None = None,
             measure_fn: Callable[..., tuple[DataShape, Timing]] = measure) -> Estimate:
    """How long ``cfg`` takes here: ``segments`` trainings (default: the whole plan) with
    ``threads`` CPU threads (default: what a run would choose now) in ``precision`` (default:
    what ``train.precision`` resolves to here). Raises what loading the data raises."""
    from prunetui import precision as precisions
    from prunetui import threads as cpu_threads
    from prunetui.device import resolve_device
    from prunetui.segments import segment_count

    device = resolve_device(cfg.train.device)
    if threads is None:
        threads = cpu_threads.choose(cfg.train.threads).threads
    if precision is None:
        precision = precisions.resolve(cfg.train.precision, device.type).used
    path = cache or cache_path()
    doc = read_cache(path)
    dkey = data_digest(cfg)

    def tkey(shape: DataShape) -> str:
        return timing_key(cfg, str(device), shape.input_shape, threads, precision)

    shape, timing = cached_entries(doc, dkey, tkey)
    source, crowded_by = "cached", 0.0
    if shape is None or timing is None:
        shape, timing = measure_fn(cfg, device, threads, precision)
        source, dkey = "measured", data_digest(cfg)  # after decoding, as the next one finds it
        doc["data"][dkey] = asdict(shape)
        if device.type == "cpu" and crowded(timing, threads):
            crowded_by = timing.busy_other  # said, and not kept for later estimates
        else:
            doc["timing"][tkey(shape)] = asdict(timing)
        write_cache(path, doc)
    count = segment_count(cfg) if segments is None else segments
    iterations, evaluations, _ = per_segment(cfg, shape)
    return Estimate(
        seconds=plan_seconds(cfg, shape, timing, count), per_step_s=timing.per_step_s,
        eval_s=timing.eval_example_s * shape.eval_size, segments=count, steps=timing.steps,
        source=source, device=device.type, threads=threads, iterations=iterations,
        evaluations=evaluations, precision=precision, crowded_by=crowded_by)
