"""Downloads of spooled temporary files: streamed, and deleted whatever the client does."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Generator
from pathlib import Path

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from storage.telemetry.export import stream_file


class SpooledFileResponse(StreamingResponse):
    """A temporary file streamed in chunks and deleted once the response ends: sent whole,
    cut short by a client going away before or during the body, or never sent at all."""

    def __init__(self, path: Path, *, media_type: str, headers: dict[str, str]) -> None:
        self._chunks: Generator[bytes, None, None] = stream_file(path)
        super().__init__(self._chunks, media_type=media_type, headers=headers)
        self._path = path
        self._deleted = weakref.finalize(self, path.unlink, missing_ok=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Closes the file the generator reads (ValueError: it is still running in a
            # worker thread, and ends on its own).
            with contextlib.suppress(ValueError):
                self._chunks.close()
            self._deleted()
