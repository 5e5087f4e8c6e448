"""prunetui: iterative pruning and Lottery Ticket experiments, in the terminal."""

import os

# PyTorch's OpenMP threads spin while waiting by default. With one more busy thread than cores
# (the app's UI thread, a second run, a test runner) a LeNet step then took 60x longer on a
# 2-core machine; passive waiting kept it within 1.2x. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
