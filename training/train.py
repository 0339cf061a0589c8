"""The training loop: -ELBO with dynamic binarization, validation each epoch, a checkpoint each
epoch (``last.pt``, plus ``best.pt`` by validation ELBO), metrics and pictures.

Runs data-parallel under ``torchrun`` (gloo on CPU, nccl on GPU): each process sees its shard of
every epoch, gradients are averaged by DistributedDataParallel, and rank 0 validates and writes.
"""

from __future__ import annotations

import csv
import dataclasses
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
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, TensorDataset
from tqdm import tqdm

from training.checkpoint import Checkpoint
from training.config import TrainConfig
from training.data import Dataset, binarize_fixed, load_dataset, to_unit
from training.loss import beta_at, objective
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
    if want_cuda:  # TF32 matrix products: several times faster, far inside the noise of training
        torch.backends.cuda.matmul.allow_tf32 = True
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


def train_epoch(
    cfg: TrainConfig,
    model: VAE,
    net: torch.nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    epoch: int,
    proc: Process,
) -> dict[str, float]:
    model.train()
    if isinstance(loader.sampler, BatchSampler) and isinstance(loader.sampler.sampler, DistributedSampler):
        loader.sampler.sampler.set_epoch(epoch)
    steps_per_epoch = len(loader)
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    # loss, reconstruction, kl and images, summed where the model runs: reading a number back from a
    # GPU waits for it, and four reads a step would make the step wait four times
    sums = torch.zeros(4, dtype=torch.float64, device=proc.device)
    lr = scheduler.get_last_lr()[0]
    bar = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=not proc.is_main,
        leave=False,
        mininterval=1.0,
        dynamic_ncols=True,
    )
    for i, (x,) in enumerate(bar):
        beta = beta_at(epoch * steps_per_epoch + i, warmup_steps, cfg.beta)
        x = x.to(proc.device, non_blocking=True)
        if cfg.binarize:
            x = torch.bernoulli(x)
        terms = objective(
            x,
            net(x, cfg.iw_samples),
            prior=model.cfg.prior,
            likelihood=model.cfg.likelihood,
            log_sigma=model.log_sigma,
            beta=beta,
            free_bits=cfg.free_bits,
        )
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        n = len(x)
        terms_now = torch.stack([terms.loss.detach(), terms.reconstruction.detach(), terms.kl.detach()])
        sums[:3] += terms_now.double() * n
        sums[3] += n
        if i % 50 == 0 and proc.is_main:  # the bar's figures, now and then
            loss_now, rec_now, kl_now = terms_now.tolist()
            bar.set_postfix(loss=f"{loss_now:.2f}", rec=f"{rec_now:.2f}", kl=f"{kl_now:.2f}", refresh=False)
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
        z = (mu + torch.exp(0.5 * logvar) * eps)[None]
        outputs = (model.decode(z[0])[None], z, mu, logvar, model.log_prior(z))
        terms = objective(
            xb, outputs, prior=model.cfg.prior, likelihood=model.cfg.likelihood, log_sigma=model.log_sigma
        )
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


@dataclass
class Run:
    """Everything one training run works with, made by ``setup`` and carried through the loop."""

    cfg: TrainConfig
    proc: Process
    data: Dataset
    model: VAE
    net: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: CosineAnnealingLR
    loader: DataLoader
    x_valid: torch.Tensor
    start_epoch: int = 0
    best: float = math.inf
    wall: float = 0.0

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.run_dir)


def setup(cfg: TrainConfig, proc: Process, resume: bool) -> Run:
    """Data, model, optimiser and schedule; from ``last.pt`` when resuming."""
    data = load_dataset(
        cfg.dataset, Path(cfg.data_dir) if cfg.data_dir else None, Path(cfg.cache_dir), cfg.preprocessing()
    )
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, image_shape=data.image_shape))
    torch.manual_seed(cfg.seed + proc.rank)
    model = VAE(cfg.model).to(proc.device)
    # the training set lives where the model runs (157 MB for MNIST): no copy to the GPU a step
    loader = make_loader(torch.from_numpy(to_unit(data.train.images)).to(proc.device), cfg, proc)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    # cosine from lr to min_lr over every step of the run, stepped once a batch
    scheduler = CosineAnnealingLR(optimizer, T_max=cfg.epochs * len(loader), eta_min=cfg.min_lr)
    net: torch.nn.Module = DistributedDataParallel(model) if proc.world_size > 1 else model
    run = Run(cfg, proc, data, model, net, optimizer, scheduler, loader, _validation_tensor(data, cfg))
    if resume:
        _restore(run, Checkpoint.load(run.run_dir / "last.pt"))
    elif cfg.model.prior == "vamp":  # the same on every rank: drawn with the run's seed
        picks = torch.randperm(len(data.train.images), generator=torch.Generator().manual_seed(cfg.seed))
        model.init_pseudo_inputs(
            torch.from_numpy(to_unit(data.train.images[picks[: cfg.model.pseudo_inputs].numpy()])).to(
                proc.device
            )
        )
    if not resume and proc.is_main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        (run.run_dir / "metrics.csv").unlink(missing_ok=True)
    if proc.is_main:
        cfg.save(run.run_dir / "config.json")
    return run


def _restore(run: Run, saved: Checkpoint) -> None:
    run.model.load_state_dict(saved.model)
    run.optimizer.load_state_dict(saved.optimizer)
    run.scheduler.load_state_dict(saved.scheduler)
    run.scheduler.T_max = run.cfg.epochs * len(run.loader)  # --epochs may have grown
    run.start_epoch, run.best, run.wall = saved.epoch, saved.best_valid_neg_elbo, saved.wall_seconds
    if run.proc.world_size == 1:
        torch.set_rng_state(saved.rng)
    else:  # rank 0's generator is the one saved; give each rank a fresh stream of its own
        torch.manual_seed(run.cfg.seed + run.proc.rank + 1000 * run.start_epoch)
    shuffle_rng = _shuffle_generator(run.loader)
    if shuffle_rng is not None and saved.shuffle_rng is not None:
        shuffle_rng.set_state(saved.shuffle_rng)  # the next epoch's order, as if never stopped


def run_epoch(run: Run, epoch: int) -> None:
    """One epoch of training; on the main process also validation, metrics and checkpoints."""
    t0 = time.perf_counter()
    row: dict[str, Any] = {"epoch": epoch + 1}
    row |= train_epoch(run.cfg, run.model, run.net, run.loader, run.optimizer, run.scheduler, epoch, run.proc)
    run.wall += time.perf_counter() - t0
    if not run.proc.is_main:
        return
    row |= validate(run.model, run.x_valid, run.cfg.eval_batch_size, run.cfg.seed)
    row["epoch_seconds"] = time.perf_counter() - t0
    _append_metrics(run.run_dir / "metrics.csv", row)
    improved = row["valid_neg_elbo"] < run.best
    run.best = min(run.best, row["valid_neg_elbo"])
    shuffle_rng = _shuffle_generator(run.loader)
    checkpoint = Checkpoint(
        config=run.cfg,
        model=run.model.state_dict(),
        optimizer=run.optimizer.state_dict(),
        scheduler=run.scheduler.state_dict(),
        epoch=epoch + 1,
        best_valid_neg_elbo=run.best,
        wall_seconds=run.wall,
        world_size=run.proc.world_size,
        dataset=run.data.name,
        versions=library_versions(),
        shuffle_rng=shuffle_rng.get_state() if shuffle_rng is not None else None,
    )
    checkpoint.save(run.run_dir / "last.pt")
    if improved:
        checkpoint.save(run.run_dir / "best.pt")
    tqdm.write(
        f"epoch {epoch + 1:4d}  train loss {row['train_loss']:8.3f}  valid -ELBO "
        f"{row['valid_neg_elbo']:8.3f} (rec {row['valid_reconstruction']:.2f}, "
        f"KL {row['valid_kl']:.2f})  {row['epoch_seconds']:.1f}s" + ("  *" if improved else "")
    )


def finish(run: Run) -> None:
    """Pictures of the best model and the run's summary."""
    best_path = run.run_dir / "best.pt"
    best_model = Checkpoint.load(best_path).build_model() if best_path.exists() else run.model
    valid = run.data.valid
    save_pictures(
        best_model, torch.from_numpy(to_unit(valid.images)), valid.labels, run.run_dir, run.cfg.seed
    )
    summary = {
        "epochs": run.cfg.epochs,
        "wall_seconds": run.wall,
        "best_valid_neg_elbo": run.best,
        "world_size": run.proc.world_size,
        "device": str(run.proc.device),
    }
    (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train per ``cfg``; returns the run folder. With ``resume``, carries on from ``last.pt``."""
    proc = setup_process(cfg)
    try:
        run = setup(cfg, proc, resume)
        for epoch in range(run.start_epoch, cfg.epochs):
            run_epoch(run, epoch)
        if proc.is_main:
            finish(run)
    finally:
        if proc.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return Path(cfg.run_dir)


def library_versions() -> dict[str, str]:
    import platform

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
    }
