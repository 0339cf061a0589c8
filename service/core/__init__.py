"""The transport-free core: models loaded and verified, their batched networks, the registry that
serves and reloads them, and the use cases (encode, decode, sample, interpolate) as functions of
arrays. Nothing here imports FastAPI or Starlette; ``service.api`` translates HTTP to and from it."""
