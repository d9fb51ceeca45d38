"""Domain errors, and their one mapping to gRPC status codes with google.rpc details.

Domain modules raise these and know nothing of gRPC; the interceptor in swap_runtime.server turns
them into statuses at the RPC edge only.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "swap.orchestrator"


class DomainError(Exception):
    """A failure a caller can act on. `reason` is a stable UPPER_SNAKE identifier."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    rpc_code: int = code_pb2.INTERNAL

    def __init__(self, message: str, *, reason: str = "ERROR", metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}

    def details(self) -> list[any_pb2.Any]:
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata))
        return [info]

    def to_status(self) -> status_pb2.Status:
        return status_pb2.Status(code=self.rpc_code, message=self.message, details=self.details())


class InvalidArgument(DomainError):
    """Bad input: names the offending field. Nothing was stored or sent."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    rpc_code = code_pb2.INVALID_ARGUMENT

    def __init__(self, field: str, description: str):
        super().__init__(f"{field}: {description}", reason="INVALID_ARGUMENT", metadata={"field": field})
        self.field = field
        self.description = description

    def details(self) -> list[any_pb2.Any]:
        bad = any_pb2.Any()
        bad.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=self.field, description=self.description)
                ]
            )
        )
        return [bad, *super().details()]


class FailedPrecondition(DomainError):
    """The request is well-formed but the chain or the session state does not allow it now."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    rpc_code = code_pb2.FAILED_PRECONDITION


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND
    rpc_code = code_pb2.NOT_FOUND


class Unavailable(DomainError):
    """A dependency (chain RPC, Redis, another service) did not answer after retries."""

    code = grpc.StatusCode.UNAVAILABLE
    rpc_code = code_pb2.UNAVAILABLE


class ResourceExhausted(DomainError):
    """A quota of the caller or of the service is used up; retrying once some of it is released can work."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    rpc_code = code_pb2.RESOURCE_EXHAUSTED


class PermissionDenied(DomainError):
    """The caller is known but may not make this call."""

    code = grpc.StatusCode.PERMISSION_DENIED
    rpc_code = code_pb2.PERMISSION_DENIED
