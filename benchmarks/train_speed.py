"""Seconds per LeNet-300-100 epoch (55K images, batch 60, Adam, masks on), measured in one run.

Compares the engine's segment loop (device-resident tensors, index slicing, in-place masks,
evaluations included) with a textbook loop (torchvision dataset + ToTensor/Normalize +
DataLoader), with torch.nn.utils.prune's forward pre-hooks, and with a compute floor (the same
model and optimizer stepping on one fixed batch: no data movement, no evaluation).

    python benchmarks/train_speed.py [--root data] [--epochs 1] [--device auto]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.nn.utils import prune as torch_prune

import prunetui  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
from prunetui import config, pruning
from prunetui.data import load_data
from prunetui.nets import prunable_layers
from prunetui.nets.lenet import LeNet300100
from prunetui.training import LoopState, RunControl, SegmentHooks, SegmentTrainer, resolve_device


def half_pruned_masks(model: torch.nn.Module) -> pruning.Masks:
    layers = prunable_layers(model)
    weights = dict(model.state_dict())
    rates = pruning.PruneRates(rate=0.5, first_rate=0.5, output_rate=0.5)
    return pruning.prune(pruning.magnitude_scores(weights, layers),
                         pruning.dense_masks(weights, layers), layers, rates, "layer")


def fresh(device: torch.device) -> tuple[torch.nn.Module, pruning.Masks]:
    torch.manual_seed(0)
    model = LeNet300100().to(device)
    return model, {k: v.to(device) for k, v in half_pruned_masks(model).items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def engine_epoch(cfg: config.Config, device: torch.device, epochs: int, eval_every: int) -> float:
    data = load_data(cfg).to(device)
    model, masks = fresh(device)
    steps = epochs * (data.train_size // cfg.train.batch_size)
    train_cfg = config.TrainConfig(batch_size=cfg.train.batch_size, eval_every=eval_every)
    trainer = SegmentTrainer(model, data, train_cfg, masks, 0, steps, RunControl())
    hooks = SegmentHooks(lambda *a: None, lambda loop: None, lambda *a: None)
    sync(device)
    start = time.perf_counter()
    trainer.run(LoopState(), hooks)
    sync(device)
    return (time.perf_counter() - start) / epochs


def floor_epoch(device: torch.device, steps: int, epochs: int) -> float:
    model, masks = fresh(device)
    params = dict(model.named_parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1.2e-3)
    x, y = torch.randn(60, 784, device=device), torch.randint(0, 10, (60,), device=device)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps * epochs):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        pruning.apply_masks(params, masks)
    sync(device)
    return (time.perf_counter() - start) / epochs


def textbook_epoch(root: str, device: torch.device, epochs: int, hooks: bool = False) -> float:
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(root, train=True, download=True, transform=tf)
    subset = torch.utils.data.Subset(train, range(55000))
    loader = torch.utils.data.DataLoader(subset, batch_size=60, shuffle=True, drop_last=True)
    model, masks = fresh(device)
    params = dict(model.named_parameters())
    if hooks:  # torch.nn.utils.prune: mask applied by a forward pre-hook on every call
        for name, mask in masks.items():
            module = getattr(model, name.split(".")[0])
            torch_prune.custom_from_mask(module, "weight", mask)
    opt = torch.optim.Adam(model.parameters(), lr=1.2e-3)
    sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not hooks:
                pruning.apply_masks(params, masks)
    sync(device)
    return (time.perf_counter() - start) / epochs


def hooks_epoch(cfg: config.Config, device: torch.device, epochs: int) -> float:
    """Engine-style tensor batches, but masks through torch.nn.utils.prune hooks."""
    data = load_data(cfg).to(device)
    model, masks = fresh(device)
    for name, mask in masks.items():
        torch_prune.custom_from_mask(getattr(model, name.split(".")[0]), "weight", mask)
    opt = torch.optim.Adam(model.parameters(), lr=1.2e-3)
    steps = data.train_size // 60
    sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(data.train_size, device=device)
        for b in range(steps):
            idx = order[b * 60:(b + 1) * 60]
            loss = F.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sync(device)
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cfg = config.apply_overrides(config.Config(), [("data.root", args.root)])
    steps = 55000 // 60
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{args.epochs} epoch(s) of {steps} steps, batch 60, Adam, half the weights masked")
    figures = {
        "compute floor (one fixed batch)": floor_epoch(device, steps, args.epochs),
        "engine, evaluation every 100 it": engine_epoch(cfg, device, args.epochs, 100),
        "engine, evaluation once per epoch": engine_epoch(cfg, device, args.epochs, steps),
        "tensor batches + nn.utils.prune hooks": hooks_epoch(cfg, device, args.epochs),
        "textbook DataLoader + transforms": textbook_epoch(args.root, device, args.epochs),
    }
    for name, seconds in figures.items():
        print(f"  {name:40s} {seconds:7.3f} s/epoch")
    floor = figures["compute floor (one fixed batch)"]
    engine = figures["engine, evaluation every 100 it"]
    engine_light = figures["engine, evaluation once per epoch"]
    print(f"engine (eval every 100) / floor      = {engine / floor:.2f}x")
    print(f"engine (eval once per epoch) / floor = {engine_light / floor:.2f}x  (target <= 1.2x)")
    print(f"textbook / engine (eval every 100)   = "
          f"{figures['textbook DataLoader + transforms'] / engine:.2f}x  (target >= 3x)")
    print(f"nn.utils.prune hooks / engine (eval once per epoch) = "
          f"{figures['tensor batches + nn.utils.prune hooks'] / engine_light:.2f}x")


if __name__ == "__main__":
    main()
