"""A tiny model repository, built in milliseconds without torch: ONNX graphs written with onnx's
helpers and seeded weights, with manifests exactly as export writes them.

The graphs are a VAE's shape, not a trained one: x [N, 1, 8, 8] -> 16 ReLU units -> mu, logvar [N, 4]
and z [N, 4] -> 16 ReLU units -> logits -> x_mean = sigmoid(logits). Service tests need real ONNX
files, real sessions and real PNGs; they do not need a model that has learnt anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from common.manifest import DECODER_IO, ENCODER_IO, FileEntry, Manifest, PriorEntry, sha256_file
from common.preprocessing import Preprocessing
from common.priors import mixture_bytes

IMAGE_SHAPE = (1, 8, 8)
MNIST_SHAPE = (1, 28, 28)
LATENT_DIM = 4
HIDDEN = 16
OPSET = 17


def _dense(name: str, x: str, weights: np.ndarray, bias: np.ndarray, out: str) -> tuple[list, list]:
    init = [numpy_helper.from_array(weights, f"{name}.w"), numpy_helper.from_array(bias, f"{name}.b")]
    return [helper.make_node("Gemm", [x, f"{name}.w", f"{name}.b"], [out])], init


def _graph(nodes: list, init: list, inputs: list, outputs: list, name: str) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _tensor(name: str, *dims: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *dims])


def encoder(rng: np.random.Generator, shape: tuple[int, int, int] = IMAGE_SHAPE) -> onnx.ModelProto:
    pixels = int(np.prod(shape))
    d1, i1 = _dense("enc1", "flat", _weights(rng, pixels, HIDDEN), np.zeros(HIDDEN, np.float32), "h")
    d2, i2 = _dense("enc2", "a", _weights(rng, HIDDEN, 2 * LATENT_DIM, 0.3), np.zeros(8, np.float32), "out")
    split = numpy_helper.from_array(np.array([LATENT_DIM, LATENT_DIM], np.int64), "halves")
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"]),
        *d1,
        helper.make_node("Relu", ["h"], ["a"]),
        *d2,
        helper.make_node("Split", ["out", "halves"], ["mu", "logvar"], axis=1),
    ]
    outputs = [_tensor("mu", LATENT_DIM), _tensor("logvar", LATENT_DIM)]
    return _graph(nodes, [*i1, *i2, split], [_tensor("x", *shape)], outputs, "encoder")


def decoder(rng: np.random.Generator, shape: tuple[int, int, int] = IMAGE_SHAPE) -> onnx.ModelProto:
    pixels = int(np.prod(shape))
    d1, i1 = _dense("dec1", "z", _weights(rng, LATENT_DIM, HIDDEN), np.zeros(HIDDEN, np.float32), "h")
    d2, i2 = _dense("dec2", "a", _weights(rng, HIDDEN, pixels), np.zeros(pixels, np.float32), "flat")
    target = numpy_helper.from_array(np.array([-1, *shape], np.int64), "image_shape")
    nodes = [
        *d1,
        helper.make_node("Relu", ["h"], ["a"]),
        *d2,
        helper.make_node("Reshape", ["flat", "image_shape"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["x_mean"]),
    ]
    outputs = [_tensor("x_mean", *shape), _tensor("logits", *shape)]
    return _graph(nodes, [*i1, *i2, target], [_tensor("z", LATENT_DIM)], outputs, "decoder")


def _weights(rng: np.random.Generator, n_in: int, n_out: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal((n_in, n_out)) * scale / np.sqrt(n_in)).astype(np.float32)


def write_model(
    models: Path, name: str, version: str, seed: int = 0, components: int = 0, mnist: bool = False
) -> Path:
    """``models/name/version/`` with encoder.onnx, decoder.onnx and model.json; with ``components``,
    a mixture prior of that many components in prior.npz; with ``mnist``, 28x28 images with uploads
    normalized as MNIST's digits (instead of 8x8 ones)."""
    folder = Path(models) / name / version
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    shape = MNIST_SHAPE if mnist else IMAGE_SHAPE
    onnx.save(encoder(rng, shape), folder / "encoder.onnx")
    onnx.save(decoder(rng, shape), folder / "decoder.onnx")
    prior = PriorEntry()
    if components:
        means = rng.normal(0.0, 1.5, (components, LATENT_DIM))
        logvars = rng.normal(-1.0, 0.3, (components, LATENT_DIM))
        (folder / "prior.npz").write_bytes(mixture_bytes(means, logvars))
        prior = PriorEntry(
            kind="mixture",
            components=components,
            file=FileEntry(path="prior.npz", sha256=sha256_file(folder / "prior.npz")),
        )
    spec = Preprocessing(*shape, normalize="mnist" if mnist else "none")
    Manifest(
        name=name,
        version=version,
        latent_dim=LATENT_DIM,
        image_shape=shape,
        likelihood="bernoulli",
        preprocessing=spec.describe(),
        preprocessing_config=spec.to_dict(),
        files={
            net: FileEntry(path=f"{net}.onnx", sha256=sha256_file(folder / f"{net}.onnx"))
            for net in ("encoder", "decoder")
        },
        metrics={"test_nll_nats": 30.0},
        training={"note": "tiny test model with seeded random weights"},
        prior=prior,
        onnx={"opset": OPSET, "encoder": ENCODER_IO, "decoder": DECODER_IO["bernoulli"]},
    ).write(folder)
    return folder


def tiny_repository(
    models: Path, name: str = "digits", versions: tuple[str, ...] = ("2", "10"), mnist: bool = False
) -> Path:
    """A repository of one tiny model in several versions (default digits/2 and digits/10)."""
    for i, version in enumerate(versions):
        write_model(models, name, version, seed=i, mnist=mnist)
    return Path(models)
