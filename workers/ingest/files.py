"""Opening input files with a message that names the file and the fix."""

from __future__ import annotations

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
