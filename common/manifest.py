"""The model repository's manifest (``models/<name>/<version>/model.json``), as the contract fixes
it. Export writes it through this model and the service reads it through the same one."""

from __future__ import annotations

import hashlib
import itertools
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# names and versions become path components: no separators, no leading dot
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MANIFEST_FILE = "model.json"
Network = Literal["encoder", "decoder"]
ENCODER_IO = {"inputs": ["x"], "outputs": ["mu", "logvar"]}
DECODER_IO = {
    "bernoulli": {"inputs": ["z"], "outputs": ["x_mean", "logits"]},
    "gaussian": {"inputs": ["z"], "outputs": ["x_mean"]},
}


def tensor_shapes(
    latent_dim: int, image_shape: tuple[int, int, int], likelihood: str
) -> dict[str, dict[str, list]]:
    """The contract's input and output shapes of each graph, N being the dynamic batch axis."""
    d, image = latent_dim, list(image_shape)
    return {
        "encoder": {"x": ["N", *image], "mu": ["N", d], "logvar": ["N", d]},
        "decoder": {"z": ["N", d]} | {o: ["N", *image] for o in DECODER_IO[likelihood]["outputs"]},
    }


def check_name(kind: str, value: str) -> str:
    """Refuse names and versions that could escape the model folder (``..``, ``/``, ``.hidden``)."""
    if not re.fullmatch(SAFE_NAME, value):
        raise ValueError(f"{kind} {value!r} must match {SAFE_NAME} (letters, digits, '.', '_', '-')")
    return value


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class FileEntry(BaseModel):
    path: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a plain file name in the folder
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PriorEntry(BaseModel):
    """p(z): the standard normal (nothing more to say), or a mixture of diagonal Gaussians whose
    means and log-variances [K, D] are in a .npz file of the folder, named and hashed here."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["standard_normal", "mixture"] = "standard_normal"
    components: int | None = Field(None, ge=1)
    file: FileEntry | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> PriorEntry:
        if self.kind == "mixture" and (self.file is None or self.components is None):
            raise ValueError("a mixture prior needs its file and its number of components")
        return self


class ScoreReference(BaseModel):
    """log p(x) of the model's own test images, by the estimator /score uses: where a new image's
    score falls among them is its percentile."""

    k: int = Field(ge=1)  # importance samples per image
    seed: int
    n_images: int = Field(ge=2)
    dataset: str
    split: str
    binarized: bool  # scored as the MNIST protocol binarizes (Bernoulli models)
    quantiles: list[float] = Field(min_length=2)  # at 0, 1/(n-1), ..., 1 of the images' log p(x)
    mean_log_px: float

    @field_validator("quantiles")
    @classmethod
    def _sorted(cls, v: list[float]) -> list[float]:
        if any(b < a for a, b in itertools.pairwise(v)):
            raise ValueError("quantiles must be in ascending order")
        return v


class LatentSummary(BaseModel):
    """Where the model's own test images sit in latent space: each unit's activity, the variance
    over the images of its mean mu (Burda et al. 2015: a unit under 0.01 is inactive, its posterior
    the prior whatever the image), and for a model of two dimensions the means of its first test
    images with their labels: the points of a latent map."""

    n_images: int = Field(ge=2)
    dataset: str
    split: str
    activity: list[float] = Field(min_length=1)
    points: list[tuple[float, float]] | None = None
    labels: list[int] | None = None

    @model_validator(mode="after")
    def _paired(self) -> LatentSummary:
        if (self.points is None) != (self.labels is None) or len(self.points or []) != len(self.labels or []):
            raise ValueError("points and labels come together, one label a point")
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=SAFE_NAME)
    version: str = Field(pattern=SAFE_NAME)
    latent_dim: int = Field(ge=1)
    image_shape: tuple[int, int, int]
    likelihood: Literal["bernoulli", "gaussian"]
    gaussian_sigma: float | None = None
    preprocessing: str
    preprocessing_config: dict[str, Any]
    files: dict[Network, FileEntry]
    metrics: dict[str, Any] = {}
    training: dict[str, Any] = {}
    onnx: dict[str, Any] = {}  # opset, parity against torch, input and output names
    prior: PriorEntry = PriorEntry()  # absent: the standard normal
    score_reference: ScoreReference | None = None  # for the percentile of /score
    latents: LatentSummary | None = None  # for people looking at the latent space (the web page)
    exported_at: str | None = None

    @field_validator("image_shape")
    @classmethod
    def _positive(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(v) < 1:
            raise ValueError(f"image_shape must be positive, got {v}")
        return v

    @model_validator(mode="after")
    def _complete(self) -> Manifest:
        if set(self.files) != {"encoder", "decoder"}:
            raise ValueError("files must name both 'encoder' and 'decoder'")
        if self.likelihood == "gaussian" and self.gaussian_sigma is None:
            raise ValueError("a gaussian likelihood needs gaussian_sigma")
        if self.latents is not None and len(self.latents.activity) != self.latent_dim:
            raise ValueError(f"latents.activity must hold latent_dim = {self.latent_dim} values")
        return self

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        return cls.model_validate_json((Path(folder) / MANIFEST_FILE).read_text())

    def write(self, folder: Path) -> None:
        (Path(folder) / MANIFEST_FILE).write_text(self.model_dump_json(indent=2) + "\n")
