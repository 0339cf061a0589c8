"""The pictures each run writes: samples, reconstructions, an interpolation strip and a latent
scatter coloured by label (PCA when D > 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.images import grid, to_pil, to_uint8
from training.model import VAE


def _save(images: torch.Tensor, path: Path, ncol: int | None = None) -> None:
    to_pil(grid(to_uint8(images.cpu().numpy()), ncol=ncol)).save(path)


@torch.no_grad()
def save_pictures(model: VAE, x: torch.Tensor, labels: np.ndarray, run_dir: Path, seed: int) -> None:
    """``x``: validation images in [0, 1]. Deterministic for a given seed."""
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    z = model.sample_prior(64, g)  # from the model's own prior
    _save(model.mean_image(model.decode(z)), run_dir / "samples.png", ncol=8)

    originals = x[:16].to(device)
    mu, _ = model.encode(originals)
    recon = model.mean_image(model.decode(mu))
    # row 1 inputs, row 2 reconstructions
    _save(torch.cat([originals, recon]), run_dir / "reconstructions.png", ncol=16)

    ends, _ = model.encode(x[:2].to(device))
    t = torch.linspace(0, 1, 12, device=device)[:, None]
    path = (1 - t) * ends[0] + t * ends[1]
    _save(model.mean_image(model.decode(path)), run_dir / "interpolation.png", ncol=12)

    _latent_scatter(model, x[:5000].to(device), labels[:5000], run_dir / "latent_scatter.png")


def _latent_scatter(model: VAE, x: torch.Tensor, labels: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mu = model.encode(x)[0].cpu().numpy().astype(np.float64)
    if mu.shape[1] > 2:  # PCA by SVD of the centred means
        centred = mu - mu.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        points, axes = centred @ vt[:2].T, ("PC 1", "PC 2")
    else:
        points, axes = np.pad(mu, ((0, 0), (0, 2 - mu.shape[1]))), ("z1", "z2")
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
    if (labels >= 0).any():
        fig.colorbar(sc, ax=ax, label="label")
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title("posterior means E_q[z] of validation images")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
