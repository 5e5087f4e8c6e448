"""Reset schemes: what a pruned network starts its next round of training from.

A scheme's start is a pure function of (theta0, trained weights, saved iteration-K weights, a
fresh draw); which one it uses is its :class:`SchemeSpec`'s ``start`` (prunetui.config.schemes
names every scheme):

- ``trained``       the weights just trained: ``keep``, ``finetune``, ``lr-rewind[:K]``
- ``fresh``         a new random initialization: ``reinit`` (the paper's control)
- ``theta0``        the original initialization: ``rewind`` (the Lottery Ticket), ``random-mask``
                    and the pruning-at-initialization schemes ``snip``, ``grasp``, ``synflow``
- ``rewind-point``  the weights saved at iteration K of the dense training: ``rewind:K``

The pruned positions are zeroed afterwards by the caller, whatever the scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from prunetui.config import parse_scheme

State = dict[str, torch.Tensor]


def uses_random_mask(scheme: str) -> bool:
    spec = parse_scheme(scheme)
    return spec is not None and spec.mask == "random"


def start_weights(
    scheme: str,
    *,
    theta0: Mapping[str, torch.Tensor],
    trained: Mapping[str, torch.Tensor],
    rewind_points: Mapping[int, Mapping[str, torch.Tensor]],
    fresh: Callable[[], State],
) -> State:
    """A new state dict (copies, never aliases of the inputs) to train this scheme from."""
    spec = parse_scheme(scheme)
    if spec is None:
        raise ValueError(f"unknown scheme {scheme!r}")
    if spec.start == "fresh":
        return fresh()
    sources = {"trained": trained, "theta0": theta0}
    source = sources[spec.start] if spec.start in sources else rewind_points[spec.k]
    return {name: t.detach().clone() for name, t in source.items()}
