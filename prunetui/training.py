"""Training and evaluation of one segment: a (replicate, round, scheme) from start to end.

The hot loop is plain tensors: batches are index slices of device-resident data through a
seeded per-epoch permutation, the mask is re-applied in place after every optimizer step (so
Adam's moments or SGD momentum can never revive a pruned weight), and nothing syncs with the
device except at evaluations and throttled progress reports.

Every random draw is a pure function of (segment seed, epoch or iteration), except the global
torch RNG (dropout), whose state is saved in checkpoints: a segment resumed at any iteration
draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from prunetui.config import TrainConfig
from prunetui.control import RunControl
from prunetui.data.tensors import TensorData
from prunetui.device import to_device
from prunetui.precision import Precision, autocast_factory
from prunetui.pruning import Masks, apply_masks
from prunetui.schedule import Schedule, SegmentRates

_MASK63 = (1 << 63) - 1
# Evaluation chunk, in input elements. On CPU, 2 MB of float inputs (668 MNIST images) keeps the
# activations in cache: 15% less CPU per evaluation than 16 MB chunks, the same logits bit for
# bit (the summed loss may differ in its last bits between chunk sizes, so the size is fixed per
# device; measured: benchmarks/train_speed.py --eval-chunks). On a GPU larger chunks mean fewer
# launches (not measured: no GPU here).
EVAL_ELEMENTS = {"cpu": 1 << 19, "cuda": 1 << 22}


class Stopped(Exception):
    """Raised inside the loop when a stop was requested (after the checkpoint is written)."""


def mix_seed(*parts: int) -> int:
    """A well-spread 63-bit seed from integers (SplitMix64 steps; stable across processes)."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (p & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x & _MASK63


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


@dataclass(frozen=True)
class EvalResult:
    val_loss: float
    val_acc: float
    test_acc: float


def eval_chunk(data: TensorData, device: torch.device) -> int:
    """Examples per evaluation forward pass."""
    elements = EVAL_ELEMENTS.get(device.type, EVAL_ELEMENTS["cuda"])
    return max(1, elements // max(1, math.prod(data.input_shape)))


@torch.inference_mode()
def _add_sums(model: nn.Module, data: TensorData, x: torch.Tensor, y: torch.Tensor, chunk: int,
              loss_sum: torch.Tensor | None, correct: torch.Tensor,
              autocast: Callable = contextlib.nullcontext) -> None:
    """Add the summed loss (when wanted) and the number of correct predictions of (x, y)."""
    for start in range(0, len(x), chunk):
        with autocast():
            logits = model(data.eval_input(x[start:start + chunk]))
        logits = logits.float()  # bf16 logits -> float32 loss; a float32 tensor is kept as is
        target = y[start:start + chunk]
        if loss_sum is not None:
            loss_sum += F.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(1) == target).sum()


def evaluate(model: nn.Module, data: TensorData, precision: Precision | None = None
             ) -> EvalResult:
    """Validation loss and accuracy and test accuracy (the test loss is never reported, so it is
    not computed); one host sync for all three. The forward passes run in ``precision`` (bf16:
    autocast; the loss is taken in float32 from the bf16 logits); None or fp32: plain float32."""
    was_training = model.training
    model.eval()
    device = data.val_x.device
    chunk = eval_chunk(data, device)
    # [validation loss sum, validation correct, test correct], summed on the device.
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    autocast = autocast_factory(precision)
    try:
        _add_sums(model, data, data.val_x, data.val_y, chunk, sums[0], sums[1], autocast)
        _add_sums(model, data, data.test_x, data.test_y, chunk, None, sums[2], autocast)
    finally:
        model.train(was_training)
    loss_sum, val_correct, test_correct = sums.tolist()
    n_val, n_test = len(data.val_x), len(data.test_x)
    nan = float("nan")
    return EvalResult(loss_sum / n_val if n_val else nan, val_correct / n_val if n_val else nan,
                      test_correct / n_test if n_test else nan)


@dataclass
class LoopState:
    """What a checkpoint must hold to continue a segment exactly where it stopped."""

    iteration: int = 0
    loss_sum: float = 0.0  # training loss summed since the last evaluation
    loss_count: int = 0


@dataclass
class SegmentHooks:
    """Callbacks from the loop to the experiment (store writes, events)."""

    on_eval: Callable[[int, float, EvalResult], None]  # (iteration, train_loss, result)
    on_checkpoint: Callable[[LoopState], None]  # end of epoch or stop request
    on_progress: Callable[[int, float], None]  # (iteration, train_loss), throttled
    on_iteration: Callable[[int], None] | None = None  # e.g. save late-rewind weights
    progress_interval_s: float = 0.25


class SegmentTrainer:
    def __init__(self, model: nn.Module, data: TensorData, cfg: TrainConfig, masks: Masks,
                 seed: int, total_iterations: int, control: RunControl,
                 precision: Precision | None = None, rates: SegmentRates | None = None) -> None:
        self.model, self.data, self.cfg, self.masks = model, data, cfg, masks
        # None: train.lr throughout (constant schedule, no warmup).
        self.rates = rates or SegmentRates(Schedule(cfg.lr, length=total_iterations))
        self.precision = precision  # None: fp32 (no autocast context at all)
        self.autocast = autocast_factory(precision)
        self.seed, self.total = seed, total_iterations
        self.control = control
        self.device = data.train_x.device
        self.per_epoch = iterations_per_epoch(data.train_size, cfg.batch_size)
        self.params = dict(model.named_parameters())
        self.optimizer = make_optimizer(model.parameters(), cfg)
        self.aug_generator = torch.Generator()

    # --- checkpoint state ---
    def state_dict(self, loop: LoopState) -> dict[str, Any]:
        state = {
            "iteration": loop.iteration,
            "loss_sum": loop.loss_sum,
            "loss_count": loop.loss_count,
            # holds the rate of the last step; the next step sets its own (a function of the
            # iteration), so a resumed segment trains at the rates an unbroken one would
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> LoopState:
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        return LoopState(state["iteration"], state["loss_sum"], state["loss_count"])

    # --- the loop ---
    def _permutation(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(mix_seed(self.seed, 1, epoch))
        return to_device(torch.randperm(self.data.train_size, generator=gen), self.device)

    def _wait_if_paused(self) -> None:
        while not self.control.running.wait(0.2):
            pass

    def run(self, loop: LoopState, hooks: SegmentHooks) -> LoopState:
        if loop.iteration == 0:
            torch.manual_seed(mix_seed(self.seed, 2))  # dropout draws, resumable via torch_rng
        self.model.train()
        apply_masks(self.params, self.masks)
        batch = self.cfg.batch_size
        # float64 sums of float32 losses are exact here, so the order of additions (split or
        # not by a checkpoint) cannot change the reported training loss.
        running_loss = torch.zeros((), device=self.device, dtype=torch.float64)
        last_progress = time.monotonic()
        last_loss = float("nan")
        while loop.iteration < self.total:
            epoch, position = divmod(loop.iteration, self.per_epoch)
            order = self._permutation(epoch)
            for b in range(position, self.per_epoch):
                if not self.control.running.is_set():
                    self._wait_if_paused()
                if self.control.stop.is_set():
                    loop.loss_sum += running_loss.item()
                    hooks.on_checkpoint(loop)
                    raise Stopped
                running_loss += self._step(order[b * batch:(b + 1) * batch], loop.iteration)
                loop.iteration += 1
                loop.loss_count += 1
                if hooks.on_iteration is not None:
                    hooks.on_iteration(loop.iteration)
                done = loop.iteration >= self.total
                if loop.iteration % self.cfg.eval_every == 0 or done:
                    loop.loss_sum += running_loss.item()
                    running_loss.zero_()
                    train_loss = last_loss = loop.loss_sum / max(1, loop.loss_count)
                    hooks.on_eval(loop.iteration, train_loss,
                                  evaluate(self.model, self.data, self.precision))
                    loop.loss_sum, loop.loss_count = 0.0, 0
                now = time.monotonic()
                if now - last_progress >= hooks.progress_interval_s:
                    last_progress = now
                    if loop.loss_count:  # else an evaluation just reported and reset the sums
                        last_loss = (loop.loss_sum + running_loss.item()) / loop.loss_count
                    hooks.on_progress(loop.iteration, last_loss)
                if done:
                    return loop
            loop.loss_sum += running_loss.item()
            running_loss.zero_()
            if loop.iteration < self.total:
                hooks.on_checkpoint(loop)  # end of an epoch
        return loop

    def _set_rate(self, rate: float) -> None:
        for group in self.optimizer.param_groups:
            if group["lr"] != rate:  # a float compare per step; most steps change nothing
                group["lr"] = rate

    def _step(self, idx: torch.Tensor, iteration: int) -> torch.Tensor:
        generator = None
        if self.data.augmented:
            generator = self.aug_generator.manual_seed(mix_seed(self.seed, 3, iteration))
        x, y = self.data.train_batch(idx, generator)
        self._set_rate(self.rates.at(iteration))
        with self.autocast():  # bf16: forward and loss under autocast, backward outside
            loss = F.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        apply_masks(self.params, self.masks)
        return loss.detach().double()


def iterations_per_epoch(train_size: int, batch_size: int) -> int:
    """Full batches per pass (the last partial batch is dropped, as DataLoader(drop_last))."""
    return max(1, train_size // batch_size)
