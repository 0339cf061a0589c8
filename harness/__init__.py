"""What tests, benchmarks and reliability runs share: free ports, real service processes, raw HTTP
over a socket, a tiny model repository built without torch, and file helpers (.npy, PNG, digits).
Nothing here is shipped; nothing here imports ``tests``."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
