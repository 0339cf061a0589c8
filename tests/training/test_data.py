"""Data sources: the MNIST pickle's hash check, IDX files, image folders and digits."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from common.preprocessing import Preprocessing
from harness.files import encode_image
from training import data
from training.data import (
    DataError,
    binarize_fixed,
    load_digits,
    load_folder,
    load_idx_dir,
    mnist_from_pickle,
    read_idx,
)


def _write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    codes = {np.dtype("uint8"): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(
        d.to_bytes(4, "big") for d in array.shape
    )
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "x", images, compress)
    assert np.array_equal(read_idx(tmp_path / "x"), images)
    ints = np.arange(6, dtype=">i4").reshape(2, 3)
    _write_idx(tmp_path / "y", ints, compress)
    assert read_idx(tmp_path / "y").tolist() == [[0, 1, 2], [3, 4, 5]]


def test_idx_bad_magic_and_truncation_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros((4, 2, 2), dtype=np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(DataError, match="13 data bytes, header declares 16"):
        read_idx(tmp_path / "short")


def test_idx_folder_splits_like_mnist(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    _write_idx(
        tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), True
    )
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 30).astype(np.uint8), True)
    _write_idx(tmp_path / "t10k-images.idx3-ubyte", rng.integers(0, 256, (7, 28, 28), dtype=np.uint8))
    _write_idx(tmp_path / "t10k-labels.idx1-ubyte", rng.integers(0, 10, 7).astype(np.uint8))
    ds = load_idx_dir(tmp_path, n_valid=10)
    assert (len(ds.train.images), len(ds.valid.images), len(ds.test.images)) == (20, 10, 7)
    assert ds.image_shape == (1, 28, 28) and ds.train.labels.dtype == np.int64


def test_idx_folder_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no train-images-idx3-ubyte"):
        load_idx_dir(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_idx_dir(tmp_path / "nowhere")


def _fake_mnist_pickle() -> bytes:
    rng = np.random.default_rng(2)
    splits = []
    for n in (6, 3, 3):
        k = rng.integers(0, 256, (n, 784))
        splits.append(((k / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)))
    return gzip.compress(pickle.dumps(tuple(splits)))


def test_mnist_pickle_with_the_wrong_hash_is_never_unpickled(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_unpickling(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickled before the hash check")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    with pytest.raises(DataError, match="refusing it"):
        mnist_from_pickle(_fake_mnist_pickle())


def test_mnist_pickle_converts_to_exact_uint8(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    raw = _fake_mnist_pickle()
    monkeypatch.setattr(data, "MNIST_SHA256", data.sha256_bytes(raw))
    arrays = mnist_from_pickle(raw)
    original = pickle.loads(gzip.decompress(raw))
    assert arrays["train_images"].shape == (6, 1, 28, 28) and arrays["train_images"].dtype == np.uint8
    assert np.array_equal(arrays["test_images"].reshape(3, 784) / 256, original[2][0])
    # the cache is built once from a local copy and read back
    (tmp_path / "mnist.pkl.gz").write_bytes(raw)
    ds = data.load_mnist(tmp_path)
    assert (tmp_path / "mnist.npz").exists() and len(ds.valid.images) == 3


def test_folder_of_png_and_jpeg_with_class_subfolders(tmp_path: Path, digit_images: np.ndarray) -> None:
    for i, img in enumerate(digit_images):
        folder = tmp_path / ("odd" if i % 2 else "even")
        folder.mkdir(exist_ok=True)
        (folder / f"{i}.{'png' if i % 3 else 'jpg'}").write_bytes(
            encode_image(img, "PNG" if i % 3 else "JPEG")
        )
    (tmp_path / "notes.txt").write_text("not an image, ignored by its suffix")
    ds = load_folder(tmp_path, Preprocessing(), holdout=0.2)
    assert len(ds.train.images) + len(ds.valid.images) + len(ds.test.images) == 12
    assert ds.image_shape == (1, 28, 28) and ds.train.images.dtype == np.uint8
    assert set(np.concatenate([ds.train.labels, ds.valid.labels, ds.test.labels])) == {0, 1}


def test_corrupt_image_in_a_folder_names_the_file(tmp_path: Path, digit_images: np.ndarray) -> None:
    (tmp_path / "good.png").write_bytes(encode_image(digit_images[0], "PNG"))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"broken\.png"):
        load_folder(tmp_path, Preprocessing())


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "nope", Preprocessing())
    with pytest.raises(DataError, match="holds no image files"):
        load_folder(tmp_path, Preprocessing())


def test_digits_are_real_and_split() -> None:
    ds = load_digits()
    n = len(ds.train.images) + len(ds.valid.images) + len(ds.test.images)
    assert n == 1797 and ds.image_shape == (1, 8, 8) and ds.train.images.max() == 255


def test_fixed_binarization_follows_the_contract() -> None:
    images = np.random.default_rng(3).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    x = images.reshape(4, 784) / 255
    expected = np.random.default_rng(0).random(x.shape) < x
    assert np.array_equal(binarize_fixed(images).reshape(4, 784), expected.astype(np.float32))
