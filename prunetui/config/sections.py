"""The settings themselves: one frozen dataclass per TOML section, with their defaults.

The TOML key names are a contract shared by presets, the CLI, the app and the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DATASETS = ("mnist", "fashion-mnist", "faces", "folder", "cifar10", "cifar100")
# Built-in networks; model.arch also takes "torchvision:NAME" and "MODULE:CALLABLE".
ARCHS = ("lenet-300-100", "lightcnn-9", "conv-2", "conv-4", "conv-6", "vgg-19", "resnet-20")
INITS = ("default", "glorot-normal", "kaiming-normal")
SCOPES = ("layer", "global")
MASK_SOURCES = ("own", "rewind")
# What a round removes: single weights, or whole units (neurons, channels; prunetui.structure).
STRUCTURES = ("weight", "unit")
UNIT_CRITERIA = ("l1", "l2", "bn-scale")  # how units are ranked (prunetui.structure.units)
OPTIMIZERS = ("adam", "sgd")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "tf32")  # prunetui.precision holds what each means
SCHEDULES = ("constant", "step", "cosine")  # prunetui.schedule holds what each means

@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    root: str = "data"
    validation: int = 5000
    train_subset: int = 0
    # Faces only: fractions of each person's images for train / validation / test.
    split: tuple[float, ...] = (0.70, 0.15, 0.15)
    # Faces and folder: images are resized to image_size, then cropped to crop.
    image_size: int = 144
    crop: int = 128
    # Folder only: 1 (grayscale) or 3 (RGB) channels.
    channels: int = 1
    # Folder and CIFAR: MB the uint8 images may take on the training device; 0 = sized from
    # free device memory (CPU: available RAM). Larger sets stream from disk.
    memory_budget_mb: int = 0


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "lenet-300-100"
    # "default" = the network's own (Glorot normal for LeNet and LightCNN; see prunetui.nets).
    init: str = "default"
    # LightCNN only: channel-width multiplier (1.0 is the paper's network).
    width: float = 1.0
    # The classifier's layer name; "" = the last nn.Linear / nn.Conv2d.
    output: str = ""
    # Keyword arguments for a torchvision: or MODULE:CALLABLE network's factory.
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PruneConfig:
    scope: str = "layer"
    rate: float = 0.2
    output_rate: float = 0.1
    # Rate for the first layer; negative means "same as rate".
    first_rate: float = -1.0
    # Rate for every convolution; negative means "same as rate".
    conv_rate: float = -1.0
    rounds: int = 15
    # Stop once this fraction of prunable weights or fewer remain; 0 means "use rounds".
    target_remaining: float = 0.0
    schemes: tuple[str, ...] = ("keep", "reinit", "rewind")
    mask_from: str = "own"
    # fnmatch patterns of layer names left dense, e.g. ["conv", "blocks.*.shortcut.0"].
    skip: tuple[str, ...] = ()
    # "weight": single weights; "unit": whole neurons / channels (and what reads them).
    structure: str = "weight"
    # Unit pruning only: rank units by "l1" or "l2" norm, or "bn-scale" (|gamma| of the
    # BatchNorm after the layer). Ignored with structure = "weight".
    unit_criterion: str = "l1"


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adam"
    lr: float = 1.2e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    # Learning-rate schedule of every segment (prunetui.schedule): constant | step | cosine.
    schedule: str = "constant"
    # Step schedule: the learning rate is multiplied by gamma at each milestone (iterations,
    # or epochs when train.epochs is set).
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    # Linear warmup from lr/warmup to lr over this many iterations (0 = none).
    warmup: int = 0
    # The finetune scheme's constant rate; 0 = the schedule's final learning rate.
    finetune_lr: float = 0.0
    batch_size: int = 60
    iterations: int = 50000
    # When > 0, overrides iterations with this many passes over the training set.
    epochs: int = 0
    eval_every: int = 100
    seed: int = 0
    replicates: int = 1
    device: str = "auto"
    # CPU threads for training; 0 = fitted to the free cores when the run starts. The value
    # used is recorded in the run directory and kept on resume (thread count changes float sums).
    threads: int = 0
    # fp32 | bf16 (autocast where supported, else fp32 + warning) | tf32 (CUDA matmuls only).
    # The precision used is recorded in the run directory and kept on resume.
    precision: str = "fp32"


@dataclass(frozen=True)
class LogConfig:
    # Folder for TensorBoard event files (a subfolder per run); "" = no TensorBoard logging.
    tensorboard: str = ""


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def num_rounds(self) -> int:
        """Pruning rounds after the dense round 0 (from ``rounds`` or ``target_remaining``)."""
        target = self.prune.target_remaining
        if target <= 0:
            return self.prune.rounds
        # The hidden-layer rate dominates the overall fraction (output, first-layer and conv
        # rates are not counted); stop at the first round below.
        return max(1, math.ceil(math.log(target) / math.log(1.0 - self.prune.rate) - 1e-9))


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "prune": PruneConfig,
    "train": TrainConfig,
    "log": LogConfig,
}

