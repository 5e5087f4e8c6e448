"""What is exported: one finished segment of a run, chosen by the user or by default.

A run's config and ``metrics.jsonl`` are read once per call chain: callers that look at several
segments (``footprint.run_footprints``) read them themselves and pass ``cfg=`` / ``metrics=``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from prunetui import config, results, store
from prunetui.export.fileformat import ExportError
from prunetui.nets import build_model
from prunetui.segments import DENSE

ACCURACY_TOLERANCE = 0.005  # default choice: within 0.5 points of the dense network
Rows = Sequence[store.MetricRow]  # metrics.jsonl rows


@dataclass
class Source:
    run: store.RunDir
    cfg: config.Config
    replicate: int
    round: int
    scheme: str
    weights: dict[str, torch.Tensor]  # masked: pruned weights exactly zero
    masks: dict[str, torch.Tensor]  # bool, per prunable weight
    remaining: float
    test_acc: float  # of these (final) weights, from the segment's last evaluation
    early_stop_test_acc: float

    def input_shape(self) -> tuple[int, ...]:
        """One model input as the run's data gave it (the networks adapt their layers to it)."""
        d = self.cfg.data
        if d.dataset in ("faces", "folder"):
            return (1 if d.dataset == "faces" else d.channels, d.crop, d.crop)
        if d.dataset in ("cifar10", "cifar100"):
            return (3, 32, 32)
        return (1, 28, 28)

    def num_classes(self) -> int:
        # Both networks register their classifier last (nets/__init__.py).
        last = [v for k, v in self.weights.items() if k.endswith(".weight") and v.dim() >= 2]
        return int(last[-1].shape[0])

    def build(self) -> nn.Module:
        """The masked network, in eval mode."""
        model = build_model(self.cfg.model, self.input_shape(), self.num_classes())
        model.load_state_dict(self.weights)
        return model.eval()


@dataclass(frozen=True)
class Choice:
    replicate: int
    round: int
    scheme: str
    reason: str

    @property
    def key(self) -> store.SegmentKey:
        return (self.replicate, self.round, self.scheme)


def run_config(run: store.RunDir) -> config.Config:
    """The run's config; an unreadable one is an ExportError."""
    try:
        return run.config()
    except config.ConfigError as err:
        raise ExportError(f"{run.path}: {err}") from err


def finished_segments(run: store.RunDir, replicate: int, *,
                      metrics: Rows | None = None) -> list[results.SegmentResult]:
    """Segments of ``replicate`` whose final checkpoint exists, from metrics.jsonl (``metrics``:
    its rows, when the caller has read them)."""
    rows = run.metrics() if metrics is None else metrics
    finals = set(run.final_checkpoints())
    return [s for s in results.segment_results(rows)
            if s.replicate == replicate
            and run.segment_checkpoint(*s.key) in finals]


def choose(run: store.RunDir, round_: int | None = None, scheme: str | None = None,
           replicate: int = 0, *, metrics: Rows | None = None) -> Choice:
    """The segment to export: the one asked for, or by default the smallest remaining fraction
    whose test accuracy at early stop is within 0.5 points of the dense network's."""
    segs = finished_segments(run, replicate, metrics=metrics)
    if not segs:
        raise ExportError(f"{run.path} has no finished round for replicate {replicate} yet; "
                          "wait for round 0 to finish (prunetui runs shows progress).")
    dense = next((s for s in segs if s.round == 0), None)
    pool = [s for s in segs if (round_ is None or s.round == round_)
            and (scheme is None or s.scheme == scheme or (s.round == 0 and scheme == DENSE))]
    if scheme is not None and round_ is None:
        pool = [s for s in pool if s.round > 0] or pool
    if not pool:
        have = ", ".join(sorted({f"{s.round}/{s.scheme}" for s in segs}))
        raise ExportError(f"{run.path} has no finished round {round_ if round_ is not None else ''}"
                          f"{' ' + scheme if scheme else ''} for replicate {replicate}; "
                          f"finished (round/scheme): {have}.")
    if round_ is not None and scheme is not None:
        seg = pool[0]
        return Choice(replicate, seg.round, seg.scheme, "as asked")
    base = dense.test_acc if dense else max(s.test_acc for s in pool)
    near = [s for s in pool if s.test_acc >= base - ACCURACY_TOLERANCE - 1e-12]
    if near:
        seg = min(near, key=lambda s: (s.remaining, -s.test_acc))
        why = (f"the smallest fraction of weights left ({100 * seg.remaining:.1f}%) whose test "
               f"accuracy at early stop ({100 * seg.test_acc:.2f}%) is at most 0.5 points below "
               f"the dense network's ({100 * base:.2f}%)")
    else:
        seg = max(pool, key=lambda s: (s.test_acc, -s.remaining))
        why = (f"no candidate is within 0.5 points of the dense network's {100 * base:.2f}%, "
               f"so the most accurate one ({100 * seg.test_acc:.2f}%)")
    return Choice(replicate, seg.round, seg.scheme, why)


def load_source(run: store.RunDir, choice: Choice, *, cfg: config.Config | None = None,
                metrics: Rows | None = None) -> Source:
    """The chosen segment's masked weights and scores, from its final checkpoint (``cfg`` and
    ``metrics``: the run's config and metric rows, when the caller has read them)."""
    if cfg is None:
        cfg = run_config(run)
    path = run.segment_checkpoint(*choice.key)
    try:
        ckpt = store.load_segment(path)
        masks = {k: v.bool() for k, v in ckpt.masks.items()}
        weights = {k: v.clone() for k, v in ckpt.weights.items()}
        for name, mask in masks.items():
            weights[name] = weights[name] * mask
    except (store.StoreError, KeyError, TypeError, AttributeError) as err:
        raise ExportError(f"Cannot export from {path}: {err}") from err
    outcome = ckpt.outcome
    if outcome is None:
        raise ExportError(f"Cannot export from {path}: it holds no result (not the checkpoint "
                          "of a finished round).")
    rows = run.metrics() if metrics is None else metrics
    last = max((r for r in rows if store.segment_key(r) == choice.key),
               key=lambda r: r["iteration"], default=None)
    return Source(run=run, cfg=cfg, replicate=choice.replicate, round=choice.round,
                  scheme=choice.scheme, weights=weights, masks=masks,
                  remaining=float(outcome.remaining),
                  test_acc=float(last["test_acc"]) if last else float("nan"),
                  early_stop_test_acc=float(outcome.test_acc))


__all__ = ["ACCURACY_TOLERANCE", "Choice", "Rows", "Source", "choose", "finished_segments",
           "load_source", "run_config"]
