"""Errors raised by the bundle layer; each carries a stable machine `code` and a `detail`."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class BundleError(Exception):
    """Base of every bundle error."""

    code = "bundle_error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class BundleSyntaxError(BundleError):
    """The body can't be read as bundle documents (encoding, YAML/JSON syntax, shape)."""

    code = "invalid_yaml"


class BundleTooLarge(BundleError):
    """Alias expansion would exceed the node budget (a "billion laughs" document)."""

    code = "bundle_too_large"


@dataclass(frozen=True)
class Refusal:
    """One reason a bundle is refused: which document, where in it (RFC 6901), and why."""

    document: int
    pointer: str
    code: str
    message: str

    def as_dict(self) -> dict[str, object]:
        """The refusal as a JSON-ready mapping."""
        return asdict(self)


class BundleRefused(BundleError):
    """The documents are readable but break the schema or a registry invariant."""

    code = "bundle_refused"

    def __init__(self, refusals: list[Refusal]) -> None:
        count = len(refusals)
        first = refusals[0] if refusals else None
        detail = f"the bundle was refused: {count} problem{'s' if count != 1 else ''}"
        if first is not None:
            detail += f", first in document {first.document} at {first.pointer or '/'}: "
            detail += first.message
        super().__init__(detail)
        self.refusals = refusals


class CommunityExists(BundleError):
    """A community of the bundle is already registered and the import was not forced."""

    code = "community_exists"

    def __init__(self, community_keys: list[str]) -> None:
        keys = ", ".join(community_keys)
        super().__init__(f"already registered: {keys}; import with force to replace")
        self.community_keys = community_keys
