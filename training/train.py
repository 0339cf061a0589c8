"""The training loop: -ELBO with dynamic binarization, validation each epoch, a checkpoint each
epoch (``last.pt``, plus ``best.pt`` by validation ELBO), metrics and pictures.

Runs data-parallel under ``torchrun`` (gloo on CPU, nccl on GPU): each process sees its shard of
every epoch, gradients are averaged by DistributedDataParallel, and rank 0 validates and writes.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, TensorDataset
from tqdm import tqdm

from training.checkpoint import load_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.data import Dataset, binarize_fixed, load_dataset, to_unit
from training.loss import beta_at, vae_loss
from training.model import VAE
from training.pictures import save_pictures

METRIC_FIELDS = [
    "epoch",
    "lr",
    "beta",
    "train_loss",
    "train_reconstruction",
    "train_kl",
    "valid_neg_elbo",
    "valid_reconstruction",
    "valid_kl",
    "epoch_seconds",
]


@dataclass
class Process:
    """Where this process stands in a (possibly single-process) data-parallel job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_process(cfg: TrainConfig) -> Process:
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if want_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda given but CUDA is not available")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Process(device=torch.device("cuda" if want_cuda else "cpu"))
    local_rank = int(os.environ["LOCAL_RANK"])
    dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    device = torch.device(f"cuda:{local_rank}") if want_cuda else torch.device("cpu")
    if want_cuda:
        torch.cuda.set_device(device)
    return Process(dist.get_rank(), world_size, device)


def make_loader(x: torch.Tensor, cfg: TrainConfig, proc: Process) -> DataLoader:
    if cfg.batch_size % proc.world_size:
        raise ValueError(f"batch_size {cfg.batch_size} must divide over {proc.world_size} processes")
    dataset = TensorDataset(x)
    if proc.world_size > 1:
        sampler: Any = DistributedSampler(dataset, proc.world_size, proc.rank, seed=cfg.seed)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.seed))
    # whole batches are gathered with one fancy index instead of per-item collation
    batches = BatchSampler(sampler, cfg.batch_size // proc.world_size, drop_last=False)
    return DataLoader(dataset, sampler=batches, batch_size=None)


def _shuffle_generator(loader: DataLoader) -> torch.Generator | None:
    """The generator behind a single process's epoch shuffles (DistributedSampler seeds by epoch)."""
    sampler = loader.sampler.sampler if isinstance(loader.sampler, BatchSampler) else None
    return sampler.generator if isinstance(sampler, RandomSampler) else None


def learning_rate(cfg: TrainConfig, progress: float) -> float:
    """Cosine from lr to min_lr over training (progress in [0, 1])."""
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def train_epoch(
    cfg: TrainConfig,
    model: VAE,
    net: torch.nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    proc: Process,
) -> dict[str, float]:
    model.train()
    if isinstance(loader.sampler, BatchSampler) and isinstance(loader.sampler.sampler, DistributedSampler):
        loader.sampler.sampler.set_epoch(epoch)
    steps_per_epoch = len(loader)
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    sums = torch.zeros(4, dtype=torch.float64)  # loss, reconstruction, kl, images
    bar = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=not proc.is_main,
        leave=False,
        mininterval=1.0,
        dynamic_ncols=True,
    )
    for i, (x,) in enumerate(bar):
        step = epoch * steps_per_epoch + i
        lr = learning_rate(cfg, step / (cfg.epochs * steps_per_epoch))
        for group in optimizer.param_groups:
            group["lr"] = lr
        beta = beta_at(step, warmup_steps, cfg.beta)
        x = x.to(proc.device, non_blocking=True)
        if cfg.binarize:
            x = torch.bernoulli(x)
        logits, mu, logvar = net(x)
        terms = vae_loss(
            x,
            logits,
            mu,
            logvar,
            likelihood=model.cfg.likelihood,
            log_sigma=model.log_sigma,
            beta=beta,
            free_bits=cfg.free_bits,
        )
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        n = len(x)
        sums += torch.tensor(
            [terms.loss.item() * n, terms.reconstruction.item() * n, terms.kl.item() * n, n],
            dtype=torch.float64,
        )
        bar.set_postfix(
            loss=f"{terms.loss.item():.2f}",
            rec=f"{terms.reconstruction.item():.2f}",
            kl=f"{terms.kl.item():.2f}",
            refresh=False,
        )
    if proc.world_size > 1:
        dist.all_reduce(sums)
    loss, rec, kl, n = sums.tolist()
    return {
        "lr": lr,
        "beta": beta,
        "train_loss": loss / n,
        "train_reconstruction": rec / n,
        "train_kl": kl / n,
    }


@torch.no_grad()
def validate(model: VAE, x: torch.Tensor, batch_size: int, seed: int) -> dict[str, float]:
    """-ELBO on a fixed validation set with fixed noise, so epochs compare like for like."""
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    rec_sum = kl_sum = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device)
        mu, logvar = model.encode(xb)
        eps = torch.randn(mu.shape, generator=g).to(device)
        logits = model.decode(mu + torch.exp(0.5 * logvar) * eps)
        terms = vae_loss(xb, logits, mu, logvar, likelihood=model.cfg.likelihood, log_sigma=model.log_sigma)
        rec_sum += terms.reconstruction.item() * len(xb)
        kl_sum += terms.kl.item() * len(xb)
    n = len(x)
    return {
        "valid_neg_elbo": (rec_sum + kl_sum) / n,
        "valid_reconstruction": rec_sum / n,
        "valid_kl": kl_sum / n,
    }


def _append_metrics(path: Path, row: dict[str, float]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()})


def _validation_tensor(data: Dataset, cfg: TrainConfig) -> torch.Tensor:
    if cfg.binarize:
        return torch.from_numpy(binarize_fixed(data.valid.images, seed=cfg.seed + 1))
    return torch.from_numpy(to_unit(data.valid.images))


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train per ``cfg``; returns the run folder. With ``resume``, carries on from ``last.pt``."""
    run_dir = Path(cfg.run_dir)
    proc = setup_process(cfg)
    try:
        data = load_dataset(
            cfg.dataset,
            Path(cfg.data_dir) if cfg.data_dir else None,
            Path(cfg.cache_dir),
            cfg.preprocessing(),
        )
        torch.manual_seed(cfg.seed + proc.rank)
        model_cfg = cfg.model_config(data.image_shape)
        model = VAE(model_cfg).to(proc.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        start_epoch, best, wall = 0, math.inf, 0.0
        if resume:
            state = load_checkpoint(run_dir / "last.pt")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, best, wall = state["epoch"], state["best_valid_neg_elbo"], state["wall_seconds"]
            if proc.world_size == 1:
                torch.set_rng_state(state["rng"])
            else:  # rank 0's generator is the one saved; give each rank a fresh stream of its own
                torch.manual_seed(cfg.seed + proc.rank + 1000 * start_epoch)
        elif proc.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "metrics.csv").unlink(missing_ok=True)
        if proc.is_main:
            cfg.save(run_dir / "config.json")
        net: torch.nn.Module = DistributedDataParallel(model) if proc.world_size > 1 else model
        loader = make_loader(torch.from_numpy(to_unit(data.train.images)), cfg, proc)
        shuffle_rng = _shuffle_generator(loader)
        if resume and shuffle_rng is not None and state.get("shuffle_rng") is not None:
            shuffle_rng.set_state(state["shuffle_rng"])  # the next epoch's order, as if never stopped
        x_valid = _validation_tensor(data, cfg)
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            row: dict[str, Any] = {"epoch": epoch + 1}
            row |= train_epoch(cfg, model, net, loader, optimizer, epoch, proc)
            wall += time.perf_counter() - t0
            if not proc.is_main:
                continue
            row |= validate(model, x_valid, cfg.eval_batch_size, cfg.seed)
            row["epoch_seconds"] = time.perf_counter() - t0
            _append_metrics(run_dir / "metrics.csv", row)
            improved = row["valid_neg_elbo"] < best
            best = min(best, row["valid_neg_elbo"])
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "model_config": model_cfg.to_dict(),
                "train_config": cfg.to_dict(),
                "epoch": epoch + 1,
                "best_valid_neg_elbo": best,
                "wall_seconds": wall,
                "valid_neg_elbo": row["valid_neg_elbo"],
                "rng": torch.get_rng_state(),
                "shuffle_rng": shuffle_rng.get_state() if shuffle_rng is not None else None,
                "world_size": proc.world_size,
                "dataset": data.name,
                "versions": library_versions(),
            }
            save_checkpoint(run_dir / "last.pt", state)
            if improved:
                save_checkpoint(run_dir / "best.pt", state)
            tqdm.write(
                f"epoch {epoch + 1:4d}  train loss {row['train_loss']:8.3f}  valid -ELBO "
                f"{row['valid_neg_elbo']:8.3f} (rec {row['valid_reconstruction']:.2f}, "
                f"KL {row['valid_kl']:.2f})  {row['epoch_seconds']:.1f}s" + ("  *" if improved else "")
            )
        if proc.is_main:
            best_model = model
            if (run_dir / "best.pt").exists():
                best_model = VAE(model_cfg)
                best_model.load_state_dict(load_checkpoint(run_dir / "best.pt")["model"])
            save_pictures(
                best_model, torch.from_numpy(to_unit(data.valid.images)), data.valid.labels, run_dir, cfg.seed
            )
            summary = {
                "epochs": cfg.epochs,
                "wall_seconds": wall,
                "best_valid_neg_elbo": best,
                "world_size": proc.world_size,
                "device": str(proc.device),
            }
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        if proc.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return run_dir


def library_versions() -> dict[str, str]:
    import platform

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
