"""What the client raises."""

from __future__ import annotations


class ClientError(Exception):
    """Anything the client could not do."""


class ServiceError(ClientError):
    """The service refused a request (4xx): retrying the same request would not help."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.field = field  # the request field the service named, e.g. "files[3]"


class Unavailable(ClientError):
    """The service could not be reached, or stayed overloaded, through every retry."""
