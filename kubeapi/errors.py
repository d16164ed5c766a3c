"""One error tree for every Kubernetes call (kopf's `clients/errors.py` is the model).

    ApiError                 any failed call; status 0 = no answer (connection, config, bad reply)
    ├── NotFound             404
    ├── Conflict             409: stale resourceVersion (optimistic concurrency): re-read, retry
    │   └── AlreadyExists    409 on create
    ├── Gone                 410 / reason Expired: a watch's resourceVersion is too old: relist
    ├── Forbidden            403
    └── Invalid              422

The class follows the HTTP status (and the Status `reason` where the status is ambiguous); the
message comes from the `metav1.Status` body. Messages and body excerpts are truncated so that a
huge or hostile answer cannot flood the logs. Callers raise these `from` the transport error,
so the cause stays in the traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Log safety: at most this much of a Status message, and of a body that is not a Status.
MAX_MESSAGE_CHARS = 1000
MAX_EXCERPT_BYTES = 300


class ApiError(Exception):
    """A failed API call: HTTP status (0 = no answer), the Status reason and message."""

    def __init__(self, status: int, reason: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def retriable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409 for a stale resourceVersion (optimistic concurrency): re-read and retry."""


class AlreadyExists(Conflict):
    """409 on create: the object is there already."""


class Gone(ApiError):
    """410: the resourceVersion a watch asked for is too old; relist."""


class Forbidden(ApiError):
    pass


class Invalid(ApiError):
    pass


MAX_RETRY_AFTER_S = 600  # a proxy's header is bounded: no call waits longer than this on its word


def body_excerpt(data: bytes) -> str:
    """The start of a body that is not a Status, as text, for a message."""
    return data[:MAX_EXCERPT_BYTES].decode("utf-8", "replace")


def error_from_status(
    status: int, body: Mapping[str, Any] | None, fallback: str = "", retry_after_header: str | None = None
) -> ApiError:
    """Map an HTTP status plus a `metav1.Status` body to our error classes. The wait a 429 or 503
    asks for comes from `details.retryAfterSeconds`, else from the `Retry-After` header (seconds;
    the HTTP-date form is not used by the API server and is ignored)."""
    reason = str((body or {}).get("reason") or "") or _REASONS.get(status, "Unknown")
    message = str((body or {}).get("message") or fallback or reason)[:MAX_MESSAGE_CHARS]
    retry_after: float | None = None
    details = (body or {}).get("details")
    if isinstance(details, Mapping) and isinstance(details.get("retryAfterSeconds"), int | float):
        retry_after = float(details["retryAfterSeconds"])
    elif retry_after_header is not None and retry_after_header.strip().isdigit():
        retry_after = float(min(int(retry_after_header.strip()), MAX_RETRY_AFTER_S))
    cls: type[ApiError]
    if status == 404:
        cls = NotFound
    elif status == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status == 410 or reason in {"Expired", "Gone"}:
        cls = Gone
    elif status == 403:
        cls = Forbidden
    elif status == 422:
        cls = Invalid
    else:
        cls = ApiError
    return cls(status, reason, message, retry_after=retry_after)


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
