"""The online half: FastAPI over onnxruntime. Nothing here imports torch."""
