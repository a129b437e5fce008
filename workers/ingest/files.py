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


def read_text(path: Path, what: str, name: str | None = None, fix: str | None = None) -> str:
    """The whole file as UTF-8 text (small files only); a UserError `<name>: cannot read
    <what> (<reason>)[; <fix>]` when that fails (name: the path unless given)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        tail = f"; {fix}" if fix else ""
        raise UserError(f"{name or path}: cannot read {what} ({reason}){tail}") from exc


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
