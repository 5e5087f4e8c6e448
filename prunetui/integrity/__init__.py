"""Damage in a run directory: find it, say what it costs, and fall back to the newest intact state.

Every checkpoint and run file has a SHA-256 sidecar (fileio.write_checked); metrics.jsonl and
sparsity.jsonl are append-only, so each checkpoint records the digest of their prefix up to its
offset, and each final segment checkpoint keeps its segment's rows, sparsity record and the
config text.

- :mod:`~prunetui.integrity.reader`: checkpoints loaded once each;
- :mod:`~prunetui.integrity.assess`: the one assessment (what is intact, lost, where work
  restarts);
- :mod:`~prunetui.integrity.resume`: a resume acting on it (move aside, rebuild, cut back);
- :mod:`~prunetui.integrity.check`: ``prunetui check`` reporting it;
- :mod:`~prunetui.integrity.restore`: config.toml and init.pt restored without retraining.
"""

from prunetui.integrity.assess import Assessment, InitVerdict, Loss, assess, init_verdict
from prunetui.integrity.check import CheckReport, FileCheck, check_run
from prunetui.integrity.reader import CheckpointReader, Probe
from prunetui.integrity.restore import config_of, regenerate_init, restore_config
from prunetui.integrity.resume import ResumePlan, plan_resume

__all__ = ["Assessment", "CheckReport", "CheckpointReader", "FileCheck", "InitVerdict", "Loss",
           "Probe", "ResumePlan", "assess", "check_run", "config_of", "init_verdict",
           "plan_resume", "regenerate_init", "restore_config"]
