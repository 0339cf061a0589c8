"""The model repository: every ``<name>/<version>/`` folder, verified, loaded and warmed.

A folder is served only when its manifest is valid, its files lie inside the repository (symlinks
resolved), each file's sha256 equals the manifest's, and the ONNX inputs and outputs have the names
and shapes the manifest implies. A folder that fails is logged with the exact reason and left out;
the others still serve.

A rescan (reload) builds a new repository next to the one serving: a folder whose manifest bytes
are unchanged keeps its loaded model; a folder that fails to load keeps the model loaded before, if
there was one. Only folders that failed at start-up, and still fail, make the service not ready: a
broken new version published by a reload leaves the service serving what it served before.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from common.manifest import MANIFEST_FILE, Manifest, tensor_shapes
from common.preprocessing import Preprocessing
from service.batching import Batcher, BatchLimits
from service.errors import NotFound
from service.metrics import INFERENCE_LATENCY, MODEL_INFO, child
from service.settings import Settings

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """Why one model folder is not served."""


@dataclass
class LoadedModel:
    manifest: Manifest
    preprocessing: Preprocessing
    encoder: ort.InferenceSession
    decoder: ort.InferenceSession
    limits: BatchLimits
    fingerprint: str  # sha256 of the manifest file, which holds the sha256 of every other file
    encoding: Batcher = field(init=False)  # await model.encoding(x) -> (mu, logvar), batched
    decoding: Batcher = field(init=False)  # await model.decoding(z) -> every decoder output, batched

    def __post_init__(self) -> None:
        labels = self.manifest.name, self.manifest.version
        self.encoding = Batcher(self.encode, self.limits, (*labels, "encoder"))
        self.decoding = Batcher(self.decode_all, self.limits, (*labels, "decoder"))

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def latent_dim(self) -> int:
        return self.manifest.latent_dim

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """x [N, C, H, W] float32 -> (mu, logvar), each [N, D]."""
        t0 = time.perf_counter()
        mu, logvar = self.encoder.run(["mu", "logvar"], {"x": x})
        child(INFERENCE_LATENCY, self.name, self.version, "encoder").observe(time.perf_counter() - t0)
        return mu, logvar

    def close(self) -> None:
        self.encoding.close()
        self.decoding.close()

    async def retire(self, request_timeout: float) -> None:
        """Close once no request can still be using this model: a request that picked it before it was
        replaced is answered, or cut off, within the request timeout."""
        await asyncio.sleep(request_timeout + 1)
        self.close()

    def decode_all(self, z: np.ndarray) -> tuple[np.ndarray, ...]:
        """z [N, D] float32 -> every decoder output: x_mean [N, C, H, W] in [0, 1] first, then (for a
        Bernoulli likelihood) logits, the contract's order (checked at load)."""
        t0 = time.perf_counter()
        outputs = self.decoder.run(None, {"z": z})
        child(INFERENCE_LATENCY, self.name, self.version, "decoder").observe(time.perf_counter() - t0)
        return tuple(outputs)


@dataclass
class LoadFailure:
    path: str
    reason: str
    blocking: bool = True  # failed at start-up (not ready); False when a reload found it broken


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings from onnxruntime are not the client's business
    return options


def _read_verified(folder: Path, root: Path, entry_path: str, sha256: str) -> bytes:
    path = (folder / entry_path).resolve()
    if not path.is_relative_to(root):
        raise ModelLoadError(f"{entry_path} resolves to {path}, outside the model repository")
    if not path.is_file():
        raise ModelLoadError(f"{entry_path} is missing")
    data = path.read_bytes()  # hash the very bytes the session is built from
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelLoadError(f"{entry_path} has sha256 {digest}, the manifest says {sha256}")
    return data


def _check_io(session: ort.InferenceSession, net: str, expected: dict[str, list]) -> None:
    found = {a.name: a.shape for a in [*session.get_inputs(), *session.get_outputs()]}
    names = [a.name for a in session.get_inputs()], [a.name for a in session.get_outputs()]
    for name, shape in expected.items():
        if name not in found:
            raise ModelLoadError(f"{net}.onnx has inputs/outputs {names}, missing {name!r}")
        if len(found[name]) != len(shape) or list(found[name][1:]) != shape[1:]:
            raise ModelLoadError(f"{net}.onnx: {name} has shape {found[name]}, the manifest implies {shape}")


def manifest_fingerprint(folder: Path) -> str:
    try:
        return hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()
    except OSError as e:
        raise ModelLoadError(f"{MANIFEST_FILE} cannot be read: {e.strerror}") from e


def load_model(folder: Path, settings: Settings) -> LoadedModel:
    fingerprint = manifest_fingerprint(folder)
    try:
        manifest = Manifest.read(folder)
    except (OSError, ValidationError, ValueError) as e:
        raise ModelLoadError(f"{MANIFEST_FILE} is invalid: {e}") from e
    if (manifest.name, manifest.version) != (folder.parent.name, folder.name):
        raise ModelLoadError(
            f"manifest names {manifest.name}/{manifest.version}, folder is {folder.parent.name}/{folder.name}"
        )
    root = settings.models_dir.resolve()
    options = session_options(settings.ort_threads)
    sessions = {}
    for net in ("encoder", "decoder"):
        entry = manifest.files[net]
        data = _read_verified(folder, root, entry.path, entry.sha256)
        try:
            sessions[net] = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad graphs
            raise ModelLoadError(f"{entry.path} is not a loadable ONNX model: {e}") from e
    shapes = tensor_shapes(manifest.latent_dim, manifest.image_shape, manifest.likelihood)
    for net in ("encoder", "decoder"):
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
    encoder, decoder = sessions["encoder"], sessions["decoder"]
    model = LoadedModel(manifest, preprocessing, encoder, decoder, limits, fingerprint)
    # warm both sessions once so the first request does not pay for lazy initialisation
    model.decode_all(model.encode(np.zeros((1, *manifest.image_shape), dtype=np.float32))[0])
    return model


def _version_key(version: str) -> tuple[int, int, str]:
    return (1, int(version), "") if version.isdigit() else (0, 0, version)


@dataclass
class ModelRepository:
    models: dict[tuple[str, str], LoadedModel] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)
    default_name: str = "mnist"
    loaded: bool = False  # set once the start-up scan has finished

    @classmethod
    def scan(cls, settings: Settings, previous: ModelRepository | None = None) -> ModelRepository:
        """Load every model folder; with ``previous``, reuse what is unchanged and keep what broke."""
        repo = cls(default_name=settings.default_model, loaded=True)
        old = previous.models if previous is not None else {}
        still_blocking = {f.path for f in previous.failures if f.blocking} if previous is not None else None
        root = settings.models_dir
        if not root.is_dir():
            repo.failures.append(LoadFailure(str(root), "model repository folder does not exist"))
            log.error("model repository %s does not exist", root)
            return repo
        for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
            if folder.name.startswith(".") or folder.parent.name.startswith("."):
                continue  # temporary folders of an export in progress
            key = (folder.parent.name, folder.name)
            path = "/".join(key)
            try:
                kept = old.get(key)
                if kept is not None and kept.fingerprint == manifest_fingerprint(folder):
                    repo.models[key] = kept
                    continue
                model = load_model(folder, settings)
            except ModelLoadError as e:
                blocking = still_blocking is None or path in still_blocking
                if key in old:
                    repo.models[key] = old[key]
                    reason = f"{e}; the version loaded before goes on serving"
                else:
                    reason = str(e)
                repo.failures.append(LoadFailure(path, reason, blocking=blocking))
                log.error("model %s refused: %s", path, reason)
                continue
            repo.models[key] = model
            MODEL_INFO.labels(model.name, model.version, str(model.latent_dim)).set(1)
            log.info("serving model %s (latent_dim %d)", path, model.latent_dim)
        return repo

    def retired_by(self, successor: ModelRepository) -> list[LoadedModel]:
        """This repository's models that ``successor`` no longer holds."""
        kept = {id(m) for m in successor.models.values()}
        gone = [m for m in self.models.values() if id(m) not in kept]
        for model in gone:
            if (model.name, model.version) not in successor.models:
                MODEL_INFO.labels(model.name, model.version, str(model.latent_dim)).set(0)
        return gone

    def close(self) -> None:
        for model in self.models.values():
            model.close()

    def versions(self, name: str) -> list[str]:
        return sorted((v for n, v in self.models if n == name), key=_version_key)

    @cached_property
    def _latest(self) -> dict[str, str]:
        # models are fixed once the scan is done: looked up on every request, worked out once
        return {name: self.versions(name)[-1] for name in self.names()}

    @cached_property
    def max_latent_dim(self) -> int:
        return max((m.latent_dim for m in self.models.values()), default=1)

    @property
    def ready(self) -> bool:
        """Loaded, serving something, and no folder that failed at start-up still failing."""
        return self.loaded and bool(self.models) and not any(f.blocking for f in self.failures)

    def names(self) -> list[str]:
        return sorted({n for n, _ in self.models})

    def get(self, name: str | None = None, version: str | None = None) -> LoadedModel:
        """The requested model; the default name and its highest version when not given."""
        name = name or self.default_name
        if name not in self._latest:
            raise NotFound(f"model: no model named {name!r}; available: {', '.join(self.names()) or 'none'}")
        model = self.models.get((name, version or self._latest[name]))
        if model is None:
            raise NotFound(
                f"version: model {name!r} has no version {version!r}; "
                f"available: {', '.join(self.versions(name))}"
            )
        return model
