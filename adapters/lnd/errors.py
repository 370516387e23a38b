"""Turn what LND (or the channel to it) says went wrong into a precise value.

Every failure the client sees ends up as one `LndError`: a kind the caller can
branch on, a message an operator can read, and whether trying again later may
help. The idempotency rules of DESIGN.md §3 hang on these kinds ("already
exists", "already settled", "payment in flight" are outcomes, not failures).

This module must not do I/O, talk gRPC or know about actors; it only classifies.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc


class ErrorKind(enum.StrEnum):
    """What went wrong, at the granularity callers decide on."""

    CONFIG = "config"  # cert/macaroon file missing or unreadable, bad host string
    UNREACHABLE = "unreachable"  # nothing answers at host:port (or the link broke)
    TLS = "tls"  # something answers but the certificate does not match
    AUTH = "auth"  # LND refused the macaroon
    LOCKED = "locked"  # LND is up but its wallet is locked / still starting
    WRONG_NETWORK = "wrong_network"  # LND runs on another chain than configured
    TIMEOUT = "timeout"  # the call's deadline passed
    NOT_FOUND = "not_found"  # no such invoice / payment
    ALREADY_EXISTS = "already_exists"  # an invoice with this hash already exists
    ALREADY_SETTLED = "already_settled"
    ALREADY_CANCELED = "already_canceled"
    STILL_OPEN = "still_open"  # settle asked before the HTLC was accepted
    PAYMENT_IN_FLIGHT = "payment_in_flight"
    ALREADY_PAID = "already_paid"
    INVALID = "invalid"  # LND rejected the request's content
    CANCELLED = "cancelled"  # we cancelled the call ourselves (shutdown, unwatch)
    OTHER = "other"


# Kinds where trying the same call later may succeed without anyone changing anything.
_RETRYABLE = frozenset(
    {ErrorKind.UNREACHABLE, ErrorKind.LOCKED, ErrorKind.TIMEOUT, ErrorKind.OTHER}
)

# Kinds that mean the link to LND is unusable (as opposed to one request being refused).
LINK_KINDS = frozenset(
    {
        ErrorKind.UNREACHABLE,
        ErrorKind.TLS,
        ErrorKind.AUTH,
        ErrorKind.LOCKED,
        ErrorKind.TIMEOUT,
    }
)


@dataclass(frozen=True)
class LndError:
    """One failure of one call, as a value."""

    kind: ErrorKind
    message: str
    grpc_code: str = ""

    @property
    def retryable(self) -> bool:
        return self.kind in _RETRYABLE

    @property
    def link_down(self) -> bool:
        """True when the problem is the connection, not the request."""
        return self.kind in LINK_KINDS

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


# Substrings of LND's own error texts (lowercased), checked in this order.
_MESSAGE_RULES: tuple[tuple[tuple[str, ...], ErrorKind], ...] = (
    (
        (
            "wallet locked",
            "unlock it",
            "not yet ready to accept calls",
            "in the process of starting",
        ),
        ErrorKind.LOCKED,
    ),
    (
        (
            "macaroon",
            "verification failed",
            "signature mismatch",
            "permission denied",
            "cannot get root key",
        ),
        ErrorKind.AUTH,
    ),
    (("already exists",), ErrorKind.ALREADY_EXISTS),
    (("already settled",), ErrorKind.ALREADY_SETTLED),
    (("already canceled", "already cancelled"), ErrorKind.ALREADY_CANCELED),
    (("still open",), ErrorKind.STILL_OPEN),
    (("in transition", "in flight", "inflight"), ErrorKind.PAYMENT_IN_FLIGHT),
    (("already paid", "already succeeded"), ErrorKind.ALREADY_PAID),
    (
        (
            "unable to locate invoice",
            "invoice not found",
            "there are no existing invoices",
            "isn't initiated",
            "not initiated",
            "payment not found",
        ),
        ErrorKind.NOT_FOUND,
    ),
    (("not for current active network", "invoice not for"), ErrorKind.WRONG_NETWORK),
    (
        (
            "invoice expired",
            "amount must",
            "self-payments not allowed",
            "invalid payment request",
            "checksum failed",
            "invalid bech32",
            "invalid index",
        ),
        ErrorKind.INVALID,
    ),
)

_TLS_HINTS = ("ssl", "tls", "handshake", "certificate", "cert_verify")


def classify_rpc_error(error: grpc.RpcError, doing: str = "") -> LndError:
    """Map a gRPC failure to an `LndError`; `doing` names the call for the message."""
    code = error.code() if hasattr(error, "code") else None
    details = (error.details() if hasattr(error, "details") else None) or str(error)
    text = details.lower()
    prefix = f"{doing}: " if doing else ""
    code_name = code.name if code is not None else ""

    if code == grpc.StatusCode.CANCELLED and "locally cancelled" in text:
        return LndError(ErrorKind.CANCELLED, prefix + details, code_name)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return LndError(ErrorKind.TIMEOUT, prefix + "LND did not answer in time", code_name)
    if code == grpc.StatusCode.UNAVAILABLE:
        if any(hint in text for hint in _TLS_HINTS):
            return LndError(
                ErrorKind.TLS,
                prefix + "TLS handshake with LND failed (is lnd_cert_file LND's tls.cert "
                "for this host?): " + details,
                code_name,
            )
        if "macaroon" in text:
            return LndError(ErrorKind.AUTH, prefix + details, code_name)
        return LndError(ErrorKind.UNREACHABLE, prefix + "LND unreachable: " + details, code_name)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return LndError(ErrorKind.AUTH, prefix + "LND refused the macaroon: " + details, code_name)

    for needles, kind in _MESSAGE_RULES:
        if any(needle in text for needle in needles):
            if kind is ErrorKind.ALREADY_EXISTS and "invoice" not in text:
                # routerrpc's "payment already exists": the payment is in flight or done.
                kind = ErrorKind.PAYMENT_IN_FLIGHT
            if kind is ErrorKind.AUTH:
                return LndError(kind, prefix + "LND refused the macaroon: " + details, code_name)
            if kind is ErrorKind.LOCKED:
                return LndError(
                    kind, prefix + "LND wallet is locked or starting: " + details, code_name
                )
            return LndError(kind, prefix + details, code_name)

    if code == grpc.StatusCode.ALREADY_EXISTS:
        return LndError(ErrorKind.PAYMENT_IN_FLIGHT, prefix + details, code_name)
    if code == grpc.StatusCode.NOT_FOUND:
        return LndError(ErrorKind.NOT_FOUND, prefix + details, code_name)
    if code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
    ):
        return LndError(ErrorKind.INVALID, prefix + details, code_name)
    if code == grpc.StatusCode.CANCELLED:
        # Cancelled by the server side (stream dropped): the link, not the request.
        return LndError(
            ErrorKind.UNREACHABLE, prefix + "stream cancelled by LND: " + details, code_name
        )
    return LndError(ErrorKind.OTHER, prefix + details, code_name)
