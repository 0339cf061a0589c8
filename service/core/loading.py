"""Loading one ``<name>/<version>/`` folder: every file verified, both sessions built and warmed.

A folder is served only when its manifest is valid, every file it names (the manifest included) lies
inside the repository once symlinks are resolved, each file's sha256 equals the manifest's, and the
ONNX inputs and outputs have the names and shapes the manifest implies. Otherwise ``ModelLoadError``
says why, in words that name files relative to the folder, never host paths.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from common.manifest import MANIFEST_FILE, FileEntry, Manifest, tensor_shapes
from common.preprocessing import Preprocessing
from common.priors import prior_of
from service.core.batching import BatchLimits
from service.core.model import NETWORKS, Model
from service.settings import Settings


class ModelLoadError(Exception):
    """Why one model folder is not served."""


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings from onnxruntime are not the client's business
    return options


def read_inside(folder: Path, root: Path, name: str) -> bytes:
    """The bytes of ``folder/name``, refused when it (or a symlink on the way) leaves ``root``."""
    path = (folder / name).resolve()
    if not path.is_relative_to(root):
        raise ModelLoadError(f"{name} is a link that leaves the model repository")
    if not path.is_file():
        raise ModelLoadError(f"{name} is missing")
    try:
        return path.read_bytes()
    except OSError as e:
        raise ModelLoadError(f"{name} cannot be read: {e.strerror}") from e


def manifest_fingerprint(folder: Path, root: Path) -> str:
    return hashlib.sha256(read_inside(folder, root, MANIFEST_FILE)).hexdigest()


def read_manifest(folder: Path, root: Path) -> tuple[Manifest, str]:
    data = read_inside(folder, root, MANIFEST_FILE)
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}"
            for err in e.errors(include_url=False, include_input=False)[:5]
        )
        raise ModelLoadError(f"{MANIFEST_FILE} is invalid: {problems}") from e
    if (manifest.name, manifest.version) != (folder.parent.name, folder.name):
        raise ModelLoadError(
            f"manifest names {manifest.name}/{manifest.version}, folder is {folder.parent.name}/{folder.name}"
        )
    return manifest, hashlib.sha256(data).hexdigest()


def read_verified(folder: Path, root: Path, entry: FileEntry) -> bytes:
    """A file the manifest names, refused unless its sha256 is the manifest's (the very bytes used)."""
    data = read_inside(folder, root, entry.path)
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise ModelLoadError(f"{entry.path} has sha256 {digest}, the manifest says {entry.sha256}")
    return data


def _session(folder: Path, root: Path, entry: FileEntry, threads: int) -> ort.InferenceSession:
    data, path = read_verified(folder, root, entry), entry.path
    try:
        return ort.InferenceSession(data, session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for bad graphs
        raise ModelLoadError(f"{path} is not a loadable ONNX model ({type(e).__name__})") from e


def _check_io(session: ort.InferenceSession, net: str, expected: dict[str, list]) -> None:
    found = {a.name: a.shape for a in [*session.get_inputs(), *session.get_outputs()]}
    names = [a.name for a in session.get_inputs()], [a.name for a in session.get_outputs()]
    for name, shape in expected.items():
        if name not in found:
            raise ModelLoadError(f"{net}.onnx has inputs/outputs {names}, missing {name!r}")
        if len(found[name]) != len(shape) or list(found[name][1:]) != shape[1:]:
            raise ModelLoadError(f"{net}.onnx: {name} has shape {found[name]}, the manifest implies {shape}")


def load_model(folder: Path, settings: Settings) -> Model:
    root = settings.models_dir.resolve()
    manifest, fingerprint = read_manifest(folder, root)
    sessions = {
        net: _session(folder, root, entry, settings.ort_threads)
        for net, entry in sorted(manifest.files.items())  # the manifest names both, checked on reading
    }
    prior = manifest.prior
    data = read_verified(folder, root, prior.file) if prior.file is not None else None
    try:
        p_z = prior_of(manifest.latent_dim, prior.kind, prior.components, data)
    except ValueError as e:
        raise ModelLoadError(f"{prior.file.path if prior.file else 'the prior'}: {e}") from e
    shapes = tensor_shapes(manifest.latent_dim, manifest.image_shape, manifest.likelihood)
    for net in NETWORKS:
        _check_io(sessions[net], net, shapes[net])
    if sessions["decoder"].get_outputs()[0].name != "x_mean":
        raise ModelLoadError("decoder.onnx: its first output must be x_mean, as the contract orders them")
    preprocessing = Preprocessing.from_dict(
        manifest.preprocessing_config | {"max_pixels": settings.max_image_pixels}
    )
    limits = BatchLimits(
        max_batch=settings.max_batch_size,
        max_delay=settings.max_batch_delay_ms / 1000,
        max_queue=settings.max_queue,
        max_inline_rows=settings.max_inline_rows,
    )
    model = Model(manifest, preprocessing, sessions, limits, fingerprint, p_z)
    # warm both sessions once so the first request does not pay for lazy initialisation
    model.decode_now(model.encode_now(np.zeros((1, *manifest.image_shape), dtype=np.float32))[0])
    return model
