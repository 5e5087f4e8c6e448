"""Reset schemes: what a pruned network starts its next round of training from.

A scheme is a pure function of (theta0, trained weights, saved iteration-K weights, a fresh draw):

- ``keep``         the weights just trained (pruning then fine-tuning)
- ``reinit``       a new random initialization (the paper's control: structure without the init)
- ``rewind``       the original initialization theta0 (the Lottery Ticket)
- ``rewind:K``     the weights saved at iteration K of the dense training (late rewinding)
- ``random-mask``  theta0 under a random mask of the same per-layer sparsity (the other control)

The pruned positions are zeroed afterwards by the caller, whatever the scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from prunetui.config import rewind_iteration

State = dict[str, torch.Tensor]


def uses_random_mask(scheme: str) -> bool:
    return scheme == "random-mask"


def start_weights(
    scheme: str,
    *,
    theta0: Mapping[str, torch.Tensor],
    trained: Mapping[str, torch.Tensor],
    rewind_points: Mapping[int, Mapping[str, torch.Tensor]],
    fresh: Callable[[], State],
) -> State:
    """A new state dict (copies, never aliases of the inputs) to train this scheme from."""
    if scheme == "keep":
        source: Mapping[str, torch.Tensor] = trained
    elif scheme == "reinit":
        return fresh()
    elif scheme == "random-mask":
        source = theta0
    else:
        k = rewind_iteration(scheme)
        if k is None:
            raise ValueError(f"unknown scheme {scheme!r}")
        source = theta0 if k == 0 else rewind_points[k]
    return {name: t.detach().clone() for name, t in source.items()}
