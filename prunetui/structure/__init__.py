"""Structured (unit) pruning: whole neurons and channels, and networks that really shrink.

One concept a module:

- :mod:`.groups`: what a unit group is (the layers whose output units must go together, and
  every parameter entry each unit owns) and the errors.
- :mod:`.mfm`: Torch-Pruning's pruner for LightCNN's max-feature-map layers.
- :mod:`.graph`: the groups of a network, from Torch-Pruning's dependency graph.
- :mod:`.units`: unit scores, unit masks and the pruning step, as pure functions.
- :mod:`.masks`: unit masks to one mask per parameter, applied like weight masks.
- :mod:`.shrink`: the dense network with fewer units, computing what the masked one computes.
- :mod:`.rebuild`: the shapes of a shrunk built-in network, and rebuilding it from them.

Masks stay masks during training (the loop multiplies parameters by them after each step);
only export and measurement shrink. The round loop reaches this package through
:mod:`prunetui.unitmasks` (``prune.structure = "unit"``), the export through
:mod:`prunetui.export.build` (``--format shrunk``) and :mod:`prunetui.export.model`.
"""
