"""PyTriton serving the same decoder, as a peer for ``make bench-pytriton``: Triton's C++ HTTP front
end and dynamic batcher (up to 64 rows, 1 ms delay) in front of a Python model that runs the ONNX
decoder with onnxruntime on one thread, through ``@batch``: as the PyTriton documentation sets up
a model. The model is ``<name>-decoder`` (input ``z``, output ``x_mean``), as the service names it.

Run by its own interpreter, one with nvidia-pytriton installed (``make bench-pytriton`` makes it):
``python benchmarks/pytriton_peer.py DECODER.onnx NAME PORT [--grpc-port PORT]``. It serves on
127.0.0.1 until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("decoder", help="the decoder's ONNX file")
    p.add_argument("name", help="the model's name: it is served as <name>-decoder")
    p.add_argument("port", type=int, help="HTTP port on 127.0.0.1")
    p.add_argument("--grpc-port", type=int, default=8001, help="Triton's gRPC port on 127.0.0.1")
    p.add_argument("--max-batch-size", type=int, default=64)
    p.add_argument("--delay-us", type=int, default=1000, help="the dynamic batcher's queue delay")
    args = p.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # as the service runs it
    session = ort.InferenceSession(args.decoder, options, providers=["CPUExecutionProvider"])
    latent_dim = session.get_inputs()[0].shape[1]
    image_shape = tuple(session.get_outputs()[0].shape[1:])

    @batch
    def infer(z: np.ndarray) -> dict[str, np.ndarray]:
        return {"x_mean": session.run(["x_mean"], {"z": z})[0]}

    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        allow_metrics=False,
    )
    with Triton(config=config) as triton:
        triton.bind(
            model_name=f"{args.name}-decoder",
            infer_func=infer,
            inputs=[Tensor(name="z", dtype=np.float32, shape=(latent_dim,))],
            outputs=[Tensor(name="x_mean", dtype=np.float32, shape=image_shape)],
            config=ModelConfig(
                max_batch_size=args.max_batch_size,
                batcher=DynamicBatcher(max_queue_delay_microseconds=args.delay_us),
            ),
        )
        triton.serve()


if __name__ == "__main__":
    main()
