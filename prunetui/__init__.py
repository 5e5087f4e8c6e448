"""prunetui: iterative pruning and Lottery Ticket experiments, in the terminal."""

from prunetui.threads import set_wait_policy

# OpenMP reads its wait policy once, when torch loads: a moderate spin count (measured in
# prunetui/threads.py) unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT.
set_wait_policy()

__version__ = "0.1.0"


def __getattr__(name: str):
    # prunetui.load_pruned without importing torch at "import prunetui" (the app starts fast).
    if name == "load_pruned":
        from prunetui.export import load_pruned

        return load_pruned
    raise AttributeError(f"module 'prunetui' has no attribute {name!r}")
