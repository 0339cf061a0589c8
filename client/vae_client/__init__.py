"""A Python client of vae-service, sync and async, and the ``vae-client`` command line.

    from vae_client import Client
    with Client("http://127.0.0.1:8000") as vae:
        encoded = vae.encode(["a.png", "b.jpg"])      # mu and sigma, in input order
        images = vae.decode(encoded.mu)               # x_mean [N, C, H, W]

Big inputs are split to the server's limits (from GET /models) and the pieces sent concurrently;
503s and connection errors are retried with exponential backoff and jitter, waiting at least what
``Retry-After`` says. Every endpoint is free of side effects, so a retried request is safe.
"""

from vae_client.client import AsyncClient, Client, Encoded, Limits, Scored
from vae_client.errors import ClientError, ServiceError, Unavailable
from vae_client.retry import Retry

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "Encoded",
    "Limits",
    "Retry",
    "Scored",
    "ServiceError",
    "Unavailable",
]
