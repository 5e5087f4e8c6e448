"""The round loop: dense training, then prune / reset / retrain for each scheme, round by round.

A run is a fixed list of *segments* (replicate, round, scheme). Round 0 is the dense network,
trained once per replicate and shared by every scheme. A segment whose final checkpoint exists
is skipped (its weights and masks are loaded), so running a run directory again resumes it: the
first unfinished segment continues from ``resume.pt`` (written every epoch and on stop) and the
metric files are cut back to what that checkpoint had seen. The result is the same as an
uninterrupted run, byte for byte in everything but ``elapsed_s``. What the loop writes lives in
runrecord.py, where each replicate starts in replicates.py.
"""

from __future__ import annotations

import functools
import os
import zlib
from pathlib import Path

import torch

from prunetui import precision, pruning, replicates, saliency, store, threads, unitmasks
from prunetui.config import Config, parse_scheme
from prunetui.data import TensorData
from prunetui.data.recent import load_recent
from prunetui.device import resolve_device
from prunetui.events import (
    Checkpointed,
    Evaluated,
    EventSink,
    Log,
    RunFinished,
    RunStarted,
    SegmentFinished,
    SegmentStarted,
    TrainProgress,
    ignore,
)
from prunetui.integrity import plan_resume, restore_config
from prunetui.nets import build_model, check_model, layers_for
from prunetui.results import segment_result
from prunetui.runrecord import RunClock, RunRecord, config_text
from prunetui.schedule import run_schedule, segment_rates
from prunetui.segments import (
    Segment,
    plan,
    rewind_iterations,
    segment_iterations,
    total_iterations,
)
from prunetui.store.checkpoint import SegmentCheckpoint, save_segment
from prunetui.training import (
    EvalResult,
    LoopState,
    RunControl,
    SegmentHooks,
    SegmentTrainer,
    Stopped,
    iterations_per_epoch,
    mix_seed,
)
from prunetui.trajectory import ReplicateState, State, segment_start


class AlreadyRunning(store.StoreError):
    pass


class Experiment:
    def __init__(self, run: store.RunDir, on_event: EventSink = ignore,
                 control: RunControl | None = None, cfg: Config | None = None) -> None:
        self.run = run
        self.restored = None if cfg else restore_config(run)  # from a checkpoint
        self.cfg = cfg or run.config()
        self.emit = on_event
        if self.cfg.log.tensorboard:  # every front end (CLI, app, detached, sweeps) logs
            from prunetui.tensorboard import TensorBoardSink

            self.emit = TensorBoardSink(self.cfg.log.tensorboard, run.name, on_event)
        self.control = control or RunControl()
        self.device = resolve_device(self.cfg.train.device)
        self.segments = plan(self.cfg)
        self.rewind_ks = rewind_iterations(self.cfg.prune.schemes)
        self.clock = RunClock(self.control)

    # ------------------------------------------------------------------ public
    def execute(self) -> str:
        """Run (or resume) to the end; returns the final status. Never raises for a stop."""
        status = self.run.read_status()
        if status.state == store.FINISHED:
            self.emit(Log(f"{self.run.path} has already finished; nothing to do."))
            return store.FINISHED
        if status.effective_state == store.RUNNING and status.pid != os.getpid():
            raise AlreadyRunning(f"{self.run.path} is already running (pid {status.pid}). "
                                 "Attach to it instead of starting it twice.")
        self.run.write_status(store.RUNNING)
        if self.restored:
            self.emit(Log(self.restored, "warning"))
        try:
            self._execute()
        except Stopped:
            self._finish(store.INTERRUPTED, "stopped; resume with: prunetui run --resume "
                         f"{self.run.path}")
            return store.INTERRUPTED
        except BaseException as err:
            # A full disk or Ctrl-C leaves a resumable run; anything else is a failure (the
            # checkpoints still allow a resume once the cause is fixed).
            resumable = isinstance(err, (KeyboardInterrupt, store.StoreError))
            state = store.INTERRUPTED if resumable else store.FAILED
            self._finish(state, f"{type(err).__name__}: {err}")
            raise
        self._finish(store.FINISHED, "")
        return store.FINISHED

    # ------------------------------------------------------------------ setup
    def _finish(self, state: str, message: str) -> None:
        try:
            self.run.write_status(state, message)
        except store.StoreError as err:  # a full disk must not hide the original problem
            self.emit(Log(str(err), "error"))
        self.emit(RunFinished(str(self.run.path), state, message))

    def _prepare_data(self) -> TensorData:
        # On CPU the run's tensors are the kept ones: the launch estimate reuses them.
        data = load_recent(self.cfg, keep=self.device.type == "cpu")[0].to(self.device)
        for note in data.notes:  # files skipped, data streamed from disk: said once per start
            self.emit(Log(note))
        self.per_epoch = iterations_per_epoch(data.train_size, self.cfg.train.batch_size)
        self.total = total_iterations(self.cfg, self.per_epoch)
        self.schedule = run_schedule(self.cfg.train, self.per_epoch)  # ConfigError: no work yet
        for scheme in self.cfg.prune.schemes:
            segment_iterations(scheme, self.total)  # lr-rewind:K beyond an epoch-sized round
        return data

    def _restore_offsets(self) -> tuple[int, SegmentCheckpoint | None]:
        """Index of the first unfinished segment and its resume state; the metric files are
        cut back to what that state had seen and the run record continues them.

        Damaged files are moved aside and the run falls back to its newest intact state
        (plan_resume); each loss or repair is logged in one line.
        """
        plan_ = plan_resume(self.run, self.segments, self.rewind_ks)
        for note in plan_.notes:
            self.emit(Log(note, "warning"))
        if plan_.notes and plan_.assessment.restart:
            self.emit(Log(f"resume restarts at {plan_.assessment.restart}", "warning"))
        self.found = plan_.assessment
        self.clock.restart(plan_.offsets.elapsed_s)
        self.record = RunRecord(self.run, plan_.offsets, config_text(self.run, self.cfg),
                                self.clock)
        return plan_.done, plan_.resume

    def _final_path(self, seg: Segment) -> Path:
        return self.run.segment_checkpoint(*seg.key)

    # ------------------------------------------------------------------ main loop
    def _execute(self) -> None:
        # Before any torch work: the thread count and the precision change float sums (a
        # resume reuses the recorded ones; one this machine cannot do stops the resume).
        try:
            self.precision = precision.resolve(self.cfg.train.precision, self.device.type,
                                               threads.read_recorded_precision(self.run.path))
        except precision.Unavailable as err:
            raise store.CannotResume(str(err)) from None
        cpu = threads.start_run(self.run.path, self.cfg.train.threads, str(self.device),
                                self.precision.record())
        precision.apply(self.precision)
        data = self._prepare_data()
        check_model(self.cfg, data.input_shape, data.num_classes)  # ConfigError before any work
        self.model = build_model(self.cfg.model, data.input_shape, data.num_classes)
        self.model.to(self.device)
        self.layers = layers_for(self.cfg, self.model)
        # prune.structure = "unit": groups traced once; a network it cannot prune stops here
        self.units = unitmasks.unit_pruner(self.cfg, self.model, self.layers, data.input_shape)
        self.fresh = functools.partial(replicates.fresh_state, self.cfg.model, data.input_shape,
                                       data.num_classes)
        done, resume = self._restore_offsets()
        if changed := store.record_facts(self.run.path, data):  # datafacts.json, once
            self.emit(Log(changed, "warning"))
        self.emit(RunStarted(
            run_dir=str(self.run.path), name=self.run.name, dataset=self.cfg.data.dataset,
            arch=self.cfg.model.arch, schemes=tuple(self.cfg.prune.schemes),
            rounds=self.cfg.num_rounds, replicates=self.cfg.train.replicates,
            iterations_per_round=self.total, iterations_per_epoch=self.per_epoch,
            device=str(self.device), resumed=done > 0 or resume is not None,
            threads=cpu.threads, cpu=f"{cpu.describe()}, {threads.wait_policy_label()}",
            precision=self.precision.used))
        if self.precision.warning:
            self.emit(Log(self.precision.warning, "warning"))
        replicate: ReplicateState | None = None
        for index, seg in enumerate(self.segments):
            if replicate is None or replicate.index != seg.replicate:
                replicate = self._replicate_state(seg.replicate)
            if index < done:
                self._load_finished(seg, replicate)
                continue
            self._run_segment(seg, replicate, data, resume if index == done else None)
        store.remove_checked(self.run.resume_checkpoint())

    # ------------------------------------------------------------------ replicates
    def _replicate_state(self, rep: int) -> ReplicateState:
        return replicates.replicate_state(self.found, rep, mix_seed(self.cfg.train.seed, rep),
                                          tuple(self.cfg.prune.schemes), self.rewind_ks,
                                          self.fresh, self.emit)

    def _load_finished(self, seg: Segment, rep: ReplicateState) -> None:
        ckpt = self.found.reader.take(self._final_path(seg)).checkpoint
        masks = {k: v.float() for k, v in ckpt.masks.items()}
        rep.record(seg.scheme, ckpt.weights, masks)
        outcome = ckpt.outcome
        if outcome is None:  # a final checkpoint of an early prunetui: score its rows
            outcome = segment_result([r for r in self.run.metrics()
                                      if store.segment_key(r) == seg.key])
        self.emit(SegmentFinished(*seg.key, outcome, skipped=True))

    # ------------------------------------------------------------------ one segment
    def _run_segment(self, seg: Segment, rep: ReplicateState, data: TensorData,
                     resume: SegmentCheckpoint | None) -> None:
        if resume is not None:
            start = resume.weights
            masks = {k: v.float() for k, v in resume.masks.items()}
        else:
            start, masks = segment_start(self.cfg, seg, rep, self.layers, self.fresh,
                                         lambda method, survivors: self._at_init_masks(
                                             rep, data, method, survivors), self.units)
        rep.masks_this_round[seg.scheme] = masks
        remaining = unitmasks.remaining(masks, self.layers)  # of the prunable weights
        device_masks = {k: v.to(self.device) for k, v in masks.items()}
        self.model.load_state_dict(start)
        seed = mix_seed(rep.seed, seg.round, zlib.crc32(seg.scheme.encode()))
        length = segment_iterations(seg.scheme, self.total)
        rates = segment_rates(parse_scheme(seg.scheme), self.schedule,
                              self.cfg.train.finetune_lr)
        trainer = SegmentTrainer(self.model, data, self.cfg.train, device_masks, seed,
                                 length, self.control, self.precision, rates)
        loop = LoopState()
        if resume is not None:
            loop = trainer.load_state_dict(resume.trainer)
            self.record.resumed(resume.sparsity)
        else:
            self.record.record_sparsity(seg, unitmasks.sparsity_fields(masks, self.layers,
                                                                        self.units))
        self.emit(SegmentStarted(*seg.key, remaining,
                                 pruning.layer_remaining(unitmasks.weight_masks(
                                     masks, self.layers)), loop.iteration, length))
        rows: list[store.MetricRow] = list(resume.rows or []) if resume else []
        hooks = self._hooks(seg, rep, trainer, masks, remaining, rows)
        trainer.run(loop, hooks)
        weights = self._cpu_state()  # one copy: the final checkpoint and the next round's start
        self._save_final(seg, trainer, weights, masks, rows)
        rep.record(seg.scheme, weights, masks)

    def _hooks(self, seg: Segment, rep: ReplicateState, trainer: SegmentTrainer,
               masks: pruning.Masks, remaining: float, rows: list[store.MetricRow]) -> SegmentHooks:
        def on_eval(iteration: int, train_loss: float, result: EvalResult) -> None:
            row = self.record.evaluated(seg, iteration, self.per_epoch, remaining, train_loss,
                                        result)
            rows.append(row)
            self.emit(Evaluated(row))

        def on_checkpoint(loop: LoopState) -> None:
            path = self.run.resume_checkpoint()
            save_segment(self.record.checkpoint(seg, self._cpu_state(), masks,
                                                trainer.state_dict(loop), rows), path)
            self.emit(Checkpointed(str(path), loop.iteration))

        def on_progress(iteration: int, train_loss: float) -> None:
            self.emit(TrainProgress(*seg.key, iteration, trainer.total,
                                    iteration // self.per_epoch, train_loss))

        on_iteration = None
        rewind_points = set(self.rewind_ks) if seg.round == 0 else set()
        if rewind_points:
            def on_iteration(iteration: int) -> None:  # called every step: a set lookup only
                if iteration in rewind_points:
                    rep.rewind_points[iteration] = self._cpu_state()
                    store.save_checkpoint({"weights": rep.rewind_points[iteration]},
                                          self.run.rewind_checkpoint(seg.replicate, iteration))

        return SegmentHooks(on_eval, on_checkpoint, on_progress, on_iteration)

    def _at_init_masks(self, rep: ReplicateState, data: TensorData, method: str,
                       survivors: pruning.Survivors) -> pruning.Masks:
        """Masks scored at θ0 (prunetui.saliency) on the replicate's own sample of training
        examples (the same every round, so only the number of survivors changes)."""
        self.model.load_state_dict(rep.theta0)  # the segment loads its start weights next
        x, y = saliency.prune_sample(data, torch.Generator().manual_seed(mix_seed(rep.seed, 300)))
        masks = saliency.at_init_masks(method, self.model, self.layers, survivors, x, y)
        return {k: v.to("cpu", torch.float32) for k, v in masks.items()}

    def _cpu_state(self) -> State:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def _save_final(self, seg: Segment, trainer: SegmentTrainer, weights: State,
                    masks: pruning.Masks, rows: list[store.MetricRow]) -> None:
        result = self.record.save_final(seg, self._final_path(seg), weights, masks,
                                        trainer.state_dict(LoopState(trainer.total)), rows)
        self.emit(SegmentFinished(*seg.key, result))
