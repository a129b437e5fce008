"""HTTP Range requests of the file service: one byte range per request (RFC 9110 §14).

    bytes=a-b   bytes a through b (b past the end is cut to the last byte)
    bytes=a-    from a to the end
    bytes=-n    the last n bytes (all of them when n is larger than the object)

Anything else, several ranges included, is refused with 416 and the object's size."""

from __future__ import annotations

import re

from workers.files.signing import FileRefused

_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


class RangeNotSatisfiable(FileRefused):
    """The requested byte range is not satisfiable."""

    status = 416
    code = "range_not_satisfiable"
    hint = "Ask for one range within the object: bytes=a-b, bytes=a- or bytes=-n."

    def __init__(self, message: str | None = None, *, size: int) -> None:
        super().__init__(message)
        self.size = size


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a Range header on an object of `size` bytes; None for the
    whole object (no header)."""
    if header is None:
        return None
    text = header.strip()
    if "," in text:
        raise RangeNotSatisfiable(f"several ranges ({text[:100]}): one per request",
                                  size=size)
    m = _RANGE.fullmatch(text.replace(" ", ""))
    if m is None or m.group(1) == m.group(2) == "":
        raise RangeNotSatisfiable(f"{text[:100]!r} is not a byte range", size=size)
    first, last = m.group(1), m.group(2)
    if first == "":  # the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"{text[:100]} asks for no byte of a {size}-byte object",
                                      size=size)
        return max(size - n, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else int(last)
    if last != "" and end < start:
        raise RangeNotSatisfiable(f"{text[:100]} ends before it starts", size=size)
    if start >= size:
        raise RangeNotSatisfiable(f"{text[:100]} starts past the end of a {size}-byte object",
                                  size=size)
    return start, min(end, size - 1)
