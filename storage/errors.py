"""Errors raised by the storage layer; each carries a stable machine `code`."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every storage error."""

    code = "storage_error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFound(StorageError):
    """The object does not exist, or is not visible to the caller."""

    code = "not_found"


class Conflict(StorageError):
    """The write collides with what is stored (duplicate key, object in use)."""

    code = "conflict"


class Invalid(StorageError):
    """The write is well-formed but breaks a registry invariant."""

    code = "invalid"


class InvalidCursor(StorageError):
    """A pagination cursor that this server did not issue."""

    code = "invalid_cursor"


class Forbidden(StorageError):
    """The caller sees the object but may not change it."""

    code = "forbidden"
