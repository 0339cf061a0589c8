"""Export a trained VAE to the model repository: ``encoder.onnx``, ``decoder.onnx``, ``model.json``.

Both graphs take a dynamic batch axis N and hold no randomness (sampling z happens in the service).
Before anything becomes visible the export is checked: ``onnx.checker``, the contract's input and
output names and shapes, and onnxruntime against torch on random inputs (max abs difference
<= 1e-4). Everything is written to a hidden temporary folder that is renamed into place at the end,
so a failed export never leaves a half model behind.
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from common.manifest import (
    DECODER_IO,
    ENCODER_IO,
    FileEntry,
    Manifest,
    PriorEntry,
    check_name,
    sha256_file,
    tensor_shapes,
)
from common.preprocessing import Preprocessing
from common.priors import mixture_bytes
from training.model import VAE
from training.reference import latent_summary, score_reference

PARITY_TOLERANCE = 1e-4
PRIOR_FILE = "prior.npz"
# ops that would put randomness into a graph
RANDOM_OPS = {
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Bernoulli",
    "Multinomial",
}


@dataclass(frozen=True)
class ReferenceImages:
    """The model's own test images, as its protocol scores them (binarized for Bernoulli models)."""

    x: np.ndarray  # [N, C, H, W] in [0, 1]
    dataset: str
    split: str
    binarized: bool
    labels: np.ndarray | None = None  # [N], where the dataset has them


class ExportError(RuntimeError):
    """The export failed a check; nothing was written to the model repository."""


class EncoderGraph(nn.Module):
    """x -> (mu, logvar)."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vae.encode(x)


class DecoderGraph(nn.Module):
    """z -> (x_mean, logits) for a Bernoulli likelihood, z -> x_mean for a Gaussian one."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor) -> Any:
        logits = self.vae.decode(z)
        x_mean = self.vae.mean_image(logits)
        return (x_mean, logits) if self.vae.cfg.likelihood == "bernoulli" else x_mean


def _export_graph(module: nn.Module, example: torch.Tensor, io: dict[str, list[str]], path: Path) -> None:
    batch = torch.export.Dim("N", min=1, max=1 << 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not ours to fix
        torch.onnx.export(
            module.eval(),
            (example,),
            path,
            dynamo=True,
            external_data=False,
            verbose=False,
            input_names=io["inputs"],
            output_names=io["outputs"],
            dynamic_shapes={io["inputs"][0]: {0: batch}},
        )
    _strip_debug_metadata(path)


def _strip_debug_metadata(path: Path) -> None:
    """Drop the exporter's per-node debugging metadata (source stack traces with this machine's
    paths, FX node dumps): it is not part of the model and would make the files machine-specific."""
    model = onnx.load(path)
    graph = model.graph
    for item in [*graph.node, *graph.value_info, *graph.input, *graph.output, *graph.initializer]:
        del item.metadata_props[:]
    onnx.save(model, path)


def _check_graph(path: Path, io: dict[str, list[str]], shapes: dict[str, list[Any]]) -> None:
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    found = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.input, *model.graph.output]
    }
    names = [v.name for v in model.graph.input], [v.name for v in model.graph.output]
    if names != (io["inputs"], io["outputs"]):
        raise ExportError(f"{path.name}: inputs/outputs {names}, contract wants {io}")
    for name, shape in shapes.items():
        dims = found[name]
        if not isinstance(dims[0], str) or dims[1:] != shape[1:]:
            raise ExportError(f"{path.name}: {name} has shape {dims}, want [N, {shape[1:]}]")
    random_ops = {n.op_type for n in model.graph.node} & RANDOM_OPS
    if random_ops:
        raise ExportError(f"{path.name} contains random ops {sorted(random_ops)}")


@torch.no_grad()
def _parity(module: nn.Module, path: Path, inputs: list[torch.Tensor]) -> float:
    """Max abs difference between torch and onnxruntime over several batch sizes."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    worst = 0.0
    for tensor in inputs:
        expected = module(tensor)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, {input_name: tensor.numpy()})
        for want, have in zip(expected, got, strict=True):
            worst = max(worst, float(np.abs(want.numpy() - have).max()))
    return worst


def export_model(
    vae: VAE,
    models_dir: Path,
    name: str,
    version: str,
    *,
    preprocessing: Preprocessing,
    metrics: dict[str, Any],
    training: dict[str, Any],
    reference: ReferenceImages | None = None,
    force: bool = False,
    seed: int = 0,
) -> Path:
    """Export ``vae`` to ``models_dir/name/version`` and return that folder; with ``reference``, the
    manifest carries the log p(x) quantiles of those images, scored from the exported files."""
    check_name("name", name)
    check_name("version", version)
    vae = vae.cpu().eval()
    cfg = vae.cfg
    if cfg.image_shape != (preprocessing.channels, preprocessing.height, preprocessing.width):
        raise ExportError(f"preprocessing {preprocessing} does not produce images of shape {cfg.image_shape}")
    target = Path(models_dir) / name / version
    if target.exists() and not force:
        raise ExportError(f"{target} already exists; choose another version or pass --force")
    target.parent.mkdir(parents=True, exist_ok=True)
    decoder_io = DECODER_IO[cfg.likelihood]
    g = torch.Generator().manual_seed(seed)
    xs = [torch.rand(n, *cfg.image_shape, generator=g) for n in (1, 7, 64)]
    zs = [torch.randn(n, cfg.latent_dim, generator=g) for n in (1, 7, 64)]
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a serving user must be able to read the model
    try:
        encoder, decoder = EncoderGraph(vae), DecoderGraph(vae)
        _export_graph(encoder, xs[1], ENCODER_IO, tmp / "encoder.onnx")
        _export_graph(decoder, zs[1], decoder_io, tmp / "decoder.onnx")
        shapes = tensor_shapes(cfg.latent_dim, cfg.image_shape, cfg.likelihood)
        _check_graph(tmp / "encoder.onnx", ENCODER_IO, shapes["encoder"])
        _check_graph(tmp / "decoder.onnx", decoder_io, shapes["decoder"])
        parity = {
            "encoder": _parity(encoder, tmp / "encoder.onnx", xs),
            "decoder": _parity(decoder, tmp / "decoder.onnx", zs),
        }
        if max(parity.values()) > PARITY_TOLERANCE:
            raise ExportError(f"onnxruntime differs from torch by {parity} (> {PARITY_TOLERANCE})")
        prior = _write_prior(vae, tmp)
        manifest = Manifest(
            name=name,
            version=version,
            latent_dim=cfg.latent_dim,
            image_shape=cfg.image_shape,
            likelihood=cfg.likelihood,
            gaussian_sigma=float(vae.log_sigma.exp()) if cfg.likelihood == "gaussian" else None,
            preprocessing=preprocessing.describe(),
            preprocessing_config=preprocessing.to_dict(),
            files={
                net: FileEntry(path=f"{net}.onnx", sha256=sha256_file(tmp / f"{net}.onnx"))
                for net in ("encoder", "decoder")
            },
            metrics=metrics,
            training=training,
            prior=prior,
            onnx={
                "opset": onnx.load(tmp / "encoder.onnx").opset_import[0].version,
                "parity_max_abs_diff": parity,
                "parity_tolerance": PARITY_TOLERANCE,
                "encoder": ENCODER_IO,
                "decoder": decoder_io,
            },
            exported_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        if reference is not None:
            manifest.score_reference = score_reference(
                tmp, manifest, reference.x, dataset=reference.dataset, split=reference.split,
                binarized=reference.binarized,
            )  # fmt: skip
            manifest.latents = latent_summary(
                tmp, manifest, reference.x, reference.labels, dataset=reference.dataset, split=reference.split
            )
        manifest.write(tmp)
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_prior(vae: VAE, folder: Path) -> PriorEntry:
    """The model's p(z) for the manifest: nothing to write for the standard normal; the VampPrior's
    components (the encoder's posteriors at the pseudo-inputs) as prior.npz, named and hashed."""
    if vae.cfg.prior == "standard":
        return PriorEntry()
    with torch.no_grad():
        means, logvars = (a.numpy() for a in vae.prior_components())
    (folder / PRIOR_FILE).write_bytes(mixture_bytes(means, logvars))
    return PriorEntry(
        kind="mixture",
        components=len(means),
        file=FileEntry(path=PRIOR_FILE, sha256=sha256_file(folder / PRIOR_FILE)),
        description=f"VampPrior: the encoder's posteriors at {len(means)} learned pseudo-inputs",
    )


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished folder into place; an existing version (``force``) is moved aside
    first and removed only once the new one is in."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{tmp.name}")
        target.rename(old)
    try:
        tmp.rename(target)
    except BaseException:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old)
