"""The scheme vocabulary: the names users write in ``prune.schemes``, and what each one does.

A scheme answers three questions for every pruned round, and :class:`SchemeSpec` holds the
answers, so the loop composes them instead of branching on names:

- ``mask``:  which weights survive: ``magnitude`` (lowest |w| of the scheme's own trained
  weights removed), ``random`` (same per-layer counts, random positions) or ``at-init``
  (a saliency score of θ0: SNIP, GraSP or SynFlow, prunetui.saliency);
- ``start``: what training starts from: ``trained`` (the weights just trained), ``theta0``,
  ``fresh`` (a new random initialization) or ``rewind-point`` (the dense run's iteration K);
- ``lr``:    the learning rate while retraining: ``schedule`` (the configured schedule from
  its start), ``final`` (constant at the schedule's final rate, or ``train.finetune_lr``) or
  ``from-k`` (the schedule replayed from iteration K to its end: ``T - K`` iterations).

Torch-free: config validation, plans and the app read it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Schemes named by one word, in the order forms and docs list them.
NAMED_SCHEMES = ("keep", "finetune", "lr-rewind", "reinit", "rewind", "random-mask",
                 "snip", "grasp", "synflow")
# Schemes that also take ":K" (an iteration).
SCHEMES_WITH_K = ("rewind", "lr-rewind")
AT_INIT_SCHEMES = ("snip", "grasp", "synflow")

SCHEME_HELP = ("keep, finetune, lr-rewind, lr-rewind:K, reinit, rewind, rewind:K (an iteration), "
               "random-mask, snip, grasp, synflow")


@dataclass(frozen=True)
class SchemeSpec:
    name: str
    mask: str  # "magnitude" | "random" | "at-init"
    start: str  # "trained" | "theta0" | "fresh" | "rewind-point"
    lr: str  # "schedule" | "final" | "from-k"
    k: int = 0  # rewind:K's weights, lr-rewind:K's schedule position

    @property
    def at_init(self) -> bool:
        return self.mask == "at-init"


_FIXED = {
    "keep": SchemeSpec("keep", "magnitude", "trained", "schedule"),
    "finetune": SchemeSpec("finetune", "magnitude", "trained", "final"),
    "reinit": SchemeSpec("reinit", "magnitude", "fresh", "schedule"),
    "random-mask": SchemeSpec("random-mask", "random", "theta0", "schedule"),
    **{name: SchemeSpec(name, "at-init", "theta0", "schedule") for name in AT_INIT_SCHEMES},
}


def parse_scheme(name: str) -> SchemeSpec | None:
    """The spec of a scheme name, or None when the name is not a scheme."""
    if name in _FIXED:
        return _FIXED[name]
    head, colon, tail = name.partition(":")
    if head not in SCHEMES_WITH_K or (colon and not tail.isdigit()):
        return None
    k = int(tail) if colon else 0
    if head == "rewind":
        return SchemeSpec(name, "magnitude", "theta0" if k == 0 else "rewind-point", "schedule", k)
    return SchemeSpec(name, "magnitude", "trained", "from-k", k)


def is_scheme(name: str) -> bool:
    return parse_scheme(name) is not None


def rewind_iteration(scheme: str) -> int | None:
    """The K of ``rewind:K`` (0 for plain ``rewind``), None for other schemes: the dense
    iterations whose weights a run must keep."""
    spec = parse_scheme(scheme)
    return spec.k if spec is not None and spec.start in ("theta0", "rewind-point") \
        and spec.mask == "magnitude" else None


def lr_rewind_iteration(scheme: str) -> int | None:
    """The K of ``lr-rewind:K`` (0 for plain ``lr-rewind``), None for other schemes."""
    spec = parse_scheme(scheme)
    return spec.k if spec is not None and spec.lr == "from-k" else None
