"""A model being served: its manifest, its preprocessing, and its two onnxruntime sessions behind
dynamic batchers, with the tensor signatures read once at load."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from common.manifest import Manifest, Network
from common.preprocessing import Preprocessing
from common.priors import Prior
from service.core.batching import Batcher, BatchLimits, Outputs
from service.metrics import INFERENCE_LATENCY, child

NETWORKS: tuple[Network, ...] = ("encoder", "decoder")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # -1 for the dynamic batch axis


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def of(cls, session: ort.InferenceSession) -> Signature:
        def spec(arg: ort.NodeArg) -> TensorSpec:
            return TensorSpec(arg.name, tuple(-1 if isinstance(d, str) else d for d in arg.shape))

        return cls(tuple(map(spec, session.get_inputs())), tuple(map(spec, session.get_outputs())))


class Model:
    """``await model.encode(x)`` -> (mu, logvar); ``await model.decode(z)`` -> every decoder output,
    x_mean first. Concurrent calls are merged into batched runs."""

    def __init__(
        self,
        manifest: Manifest,
        preprocessing: Preprocessing,
        sessions: dict[Network, ort.InferenceSession],
        limits: BatchLimits,
        fingerprint: str,
        prior: Prior,
    ) -> None:
        self.manifest = manifest
        self.preprocessing = preprocessing
        self.fingerprint = fingerprint  # sha256 of the manifest, which holds the sha256 of every file
        self.name, self.version, self.latent_dim = manifest.name, manifest.version, manifest.latent_dim
        self.prior = prior  # p(z): what /sample draws from and /score evaluates
        self._sessions = sessions
        self.signatures = {net: Signature.of(session) for net, session in sessions.items()}
        self._latency = {net: child(INFERENCE_LATENCY, self.name, self.version, net) for net in NETWORKS}
        labels = self.name, self.version
        self.encode = Batcher(self.encode_now, limits, (*labels, "encoder"))
        self.decode = Batcher(self.decode_now, limits, (*labels, "decoder"))

    def network(self, net: Network) -> Batcher:
        return self.encode if net == "encoder" else self.decode

    def encode_now(self, x: np.ndarray) -> Outputs:
        """x [N, C, H, W] float32 -> (mu, logvar), each [N, D], in this thread."""
        return self._run("encoder", ["mu", "logvar"], {"x": x})

    def decode_now(self, z: np.ndarray) -> Outputs:
        """z [N, D] float32 -> x_mean [N, C, H, W] in [0, 1], then (Bernoulli) logits, in this thread."""
        return self._run("decoder", None, {"z": z})

    def _run(self, net: Network, names: list[str] | None, feed: dict[str, np.ndarray]) -> Outputs:
        t0 = time.perf_counter()
        outputs = self._sessions[net].run(names, feed)
        self._latency[net].observe(time.perf_counter() - t0)
        return tuple(outputs)

    def close(self) -> None:
        self.encode.close()
        self.decode.close()

    async def retire(self, request_timeout: float) -> None:
        """Close once no request can still be using this model: a request that picked it before it was
        replaced is answered, or cut off, within the request timeout."""
        await asyncio.sleep(request_timeout + 1)
        self.close()
