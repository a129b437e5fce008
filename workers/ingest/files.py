"""Opening input files with a message that names the file and the fix, and reading them
in blocks of whole lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from workers.errors import UserError


def open_binary(path: Path) -> IO[bytes]:
    """`path` opened for reading bytes; a UserError naming it when that fails."""
    try:
        return path.open("rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the file ({exc.strerror}); check the path "
                        "and its permissions") from exc


def line_blocks(fh: IO[bytes], block_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines (the last may lack a newline)."""
    rest = b""
    while True:
        block = fh.read(block_bytes)
        if not block:
            if rest.strip():
                yield rest
            return
        block = rest + block
        cut = block.rfind(b"\n")
        if cut < 0:
            rest = block
            continue
        rest = block[cut + 1:]
        yield block[: cut + 1]
