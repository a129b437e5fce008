"""Optional keypoints (COCO-17) from JSONL, validated like the tracks.

One object per line: {"track_id": "7", "frame": 12, "keypoints": [[x, y, score] x 17]}.
Keypoints stay in the coordinates they were given (image pixels for most pose models);
the merge attaches each pose to the batch point with the same (track_id, frame).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from workers.errors import UserError
from workers.ingest.files import line_blocks, open_binary
from workers.ingest.formats import BLOCK_BYTES, check_utf8
from workers.ingest.schema import ErrorLog, RowError

KEYPOINTS = 17
POSE_COLUMNS = ("row_no", "track_id", "frame", "keypoints")


def _keypoints(value: Any) -> tuple[list[float] | None, str, str]:
    """Flattened 51 numbers, or None with (code, message)."""
    if not isinstance(value, list) or len(value) != KEYPOINTS:
        n = len(value) if isinstance(value, list) else 0
        return None, "keypoints_shape", f"keypoints must be {KEYPOINTS} [x, y, score] " \
                                        f"triples (COCO-17); got {n}"
    flat: list[float] = []
    for kp in value:
        if (not isinstance(kp, list) or len(kp) != 3
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in kp)):
            return None, "keypoints_shape", "each keypoint is [x, y, score] (three numbers)"
        flat.extend(float(v) for v in kp)
    if not all(math.isfinite(v) for v in flat):
        return None, "not_finite", "keypoints hold NaN or infinity"
    if not all(0.0 <= flat[i] <= 1.0 for i in range(2, len(flat), 3)):
        return None, "out_of_range", "keypoint scores must lie in [0, 1]"
    if not all(abs(v) < 1e6 for v in flat):
        return None, "out_of_bounds", "keypoint coordinates are implausible (≥ 1e6)"
    return flat, "", ""


def _frame(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


@dataclass
class PoseReader:
    """Streams a poses JSONL file as staging frames; errors go to `errors`."""

    path: Path
    errors: ErrorLog = field(default_factory=ErrorLog)
    rows_total: int = 0
    valid: int = 0
    _seen: set[tuple[str, int]] = field(default_factory=set)

    def open(self) -> PoseReader:
        if not self.path.is_file():
            raise UserError(f"--poses {self.path}: no such file")
        with open_binary(self.path) as fh:
            check_utf8(fh.read(65536).rsplit(b"\n", 1)[0], self.path)
        return self

    def chunks(self) -> Iterator[pl.DataFrame]:
        with open_binary(self.path) as fh:
            for block in line_blocks(fh, BLOCK_BYTES):
                check_utf8(block, self.path)
                yield self._parse(block)

    def _bad(self, row: int, column: str | None, code: str, message: str) -> None:
        self.errors.add(RowError(row, column, code, message))
        self.errors.invalid_rows += 1

    def _parse(self, block: bytes) -> pl.DataFrame:
        rows: list[int] = []
        tids: list[str] = []
        frames: list[int] = []
        kps: list[str] = []
        for line in block.splitlines():
            if not line.strip():
                continue
            self.rows_total += 1
            n = self.rows_total
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                self._bad(n, None, "unparseable", "the line is not a JSON object")
                continue
            tid = obj.get("track_id")
            if isinstance(tid, int) and not isinstance(tid, bool):
                tid = str(tid)
            if not isinstance(tid, str) or not tid.strip():
                self._bad(n, "track_id", "missing", "track_id is missing or not text")
                continue
            if "\x00" in tid:  # Postgres text cannot hold it: this row's error, not the file's
                self._bad(n, "track_id", "nul_byte", "track_id contains a NUL byte (\\x00); "
                                                     "remove it")
                continue
            frame = _frame(obj.get("frame"))
            if frame is None or frame < 0:
                self._bad(n, "frame", "type", "frame must be an integer ≥ 0")
                continue
            flat, code, message = _keypoints(obj.get("keypoints"))
            if flat is None:
                self._bad(n, "keypoints", code, message)
                continue
            if (tid, frame) in self._seen:
                self._bad(n, "frame", "duplicate_key",
                          f"track {tid} has a pose for frame {frame} twice")
                continue
            self._seen.add((tid, frame))
            rows.append(n)
            tids.append(tid)
            frames.append(frame)
            kps.append("{" + ",".join(repr(v) for v in flat) + "}")
        self.valid += len(rows)
        return pl.DataFrame({"row_no": rows, "track_id": tids, "frame": frames,
                             "keypoints": kps},
                            schema={"row_no": pl.Int64, "track_id": pl.String,
                                    "frame": pl.Int64, "keypoints": pl.String})
