"""``make bench``: the service's throughput and latency against onnxruntime's own ceiling."""
