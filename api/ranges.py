"""HTTP ``Range`` requests (RFC 9110 §14) for one byte range, as media players send them."""

from __future__ import annotations

import re

from fastapi import HTTPException, status

from storage import ByteRange

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range asked for, clamped to the blob; None for the whole blob. Raises 416 when unsatisfiable.

    Multi-range requests are served whole (allowed by the RFC); a malformed header is ignored, as the RFC says.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise unsatisfiable(size)
        return ByteRange(max(0, size - length), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise unsatisfiable(size)
    return ByteRange(start, min(end, size - 1))


def unsatisfiable(size: int) -> HTTPException:
    return HTTPException(
        status.HTTP_416_RANGE_NOT_SATISFIABLE,
        "range not satisfiable",
        headers={"Content-Range": f"bytes */{size}"},
    )
