"""Where each replicate starts: its θ0 and the rewind points its dense round saved.

θ0 is drawn from the replicate's seed and written to ``init.pt`` the first time; later starts
read it back. A missing or damaged ``init.pt`` is regenerated from the seed, and replaces the
file only when it matches the digest recorded for it (integrity.regenerate_init).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from prunetui import store
from prunetui.config import ModelConfig
from prunetui.events import EventSink, Log
from prunetui.integrity import Assessment, init_verdict, regenerate_init
from prunetui.nets import build_model, init_weights
from prunetui.store.checkpoint import THETA0_KEY, WEIGHTS_KEY, theta0_bytes
from prunetui.training import mix_seed
from prunetui.trajectory import ReplicateState, State

Fresh = Callable[[int], State]  # seed -> newly initialised weights


def fresh_state(model: ModelConfig, input_shape: tuple[int, ...], num_classes: int,
                seed: int) -> State:
    """Newly initialised weights of ``model``, drawn from ``seed`` alone."""
    net = build_model(model, input_shape, num_classes)
    init_weights(net, model.init, torch.Generator().manual_seed(seed))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def replicate_state(found: Assessment, rep: int, seed: int, schemes: tuple[str, ...],
                    rewind_ks: list[int], fresh: Fresh, emit: EventSink
                    ) -> ReplicateState:
    """θ0 and the intact rewind points of replicate ``rep`` (seeded with ``seed``)."""
    state = ReplicateState(index=rep, seed=seed, theta0=theta0(found, rep, seed, fresh, emit),
                           schemes=schemes)
    for k in rewind_ks:
        # A damaged one still needed made plan_resume retrain the dense round instead.
        probe = found.reader.take_tensors(found.run.rewind_checkpoint(rep, k), WEIGHTS_KEY)
        if probe.ok:
            state.rewind_points[k] = probe.tensors
    return state


def theta0(found: Assessment, rep: int, seed: int, fresh: Fresh, emit: EventSink) -> State:
    """init.pt, or θ0 regenerated from the seed when it is missing or damaged."""
    path = found.run.init_checkpoint(rep)
    probe = found.reader.take_tensors(path, THETA0_KEY)
    if probe.ok:
        return probe.tensors
    weights = fresh(mix_seed(seed, 0))
    data = theta0_bytes(weights)
    verdict = init_verdict(found, rep, probe)
    if verdict.damaged:
        problem = probe.problem if path.exists() else "missing"
        emit(Log(regenerate_init(found.run, rep, data, verdict, problem), "warning"))
    else:
        store.write_checked(path, data)
    return weights
