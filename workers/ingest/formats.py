"""Readers: every supported track format streamed as chunks of canonical columns.

A reader opens its file eagerly (so an unreadable file, a wrong format or a schema
mismatch fails before anything touches the database) and then yields polars frames with
the canonical column names (values as received, cast later by validation) plus `_row`,
the 1-based data row number. Text is read in blocks cut at line ends, so memory stays
bounded whatever the file size.
"""

from __future__ import annotations

import configparser
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from workers.errors import UserError
from workers.ingest.files import line_blocks, open_binary
from workers.ingest.kpf import KpfGeomReader, KpfOptions
from workers.ingest.schema import BAD, CANONICAL, FORMATS, OPTIONAL, REQUIRED, ROW

BLOCK_BYTES = 16 << 20
PARQUET_BATCH_ROWS = 262_144
MOT_CLASSES = {1: "pedestrian", 2: "person_on_vehicle", 3: "car", 4: "bicycle", 5: "motorbike",
               6: "non_motorized_vehicle", 7: "static_person", 8: "distractor", 9: "occluder",
               10: "occluder_on_ground", 11: "occluder_full", 12: "reflection"}
MOT_COLUMNS = ["frame", "id", "left", "top", "w", "h", "conf", "class", "visibility"]


def detect_format(path: Path) -> str:
    """The format a file name implies (override with --format)."""
    name = path.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "canonical-parquet"
    if name.endswith(".csv"):
        return "canonical-csv"
    if name.endswith(".jsonl") or name.endswith(".ndjson"):
        return "jsonl"
    if name.endswith((".geom.yml", ".geom.yaml")):
        return "kpf"
    if name in ("gt.txt", "det.txt"):
        return "mot"
    if name.endswith(".txt"):
        with open_binary(path) as fh:
            head = fh.read(4096)
        return "mot" if b"," in head.split(b"\n", 1)[0] else "eth"
    raise UserError(f"{path}: cannot tell the format from the name; pass --format "
                    f"({', '.join(FORMATS)})")


def parse_mapping(spec: str | None) -> dict[str, str]:
    """`x=pos_x,y=pos_y` → {"x": "pos_x", "y": "pos_y"} (canonical name → file column)."""
    if not spec:
        return {}
    out: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value or key not in CANONICAL:
            raise UserError(f"--map {spec!r}: use canonical=column pairs such as "
                            f"x=pos_x,y=pos_y; canonical names are {', '.join(CANONICAL)}")
        out[key] = value
    return out


def check_utf8(block: bytes, path: Path) -> None:
    try:
        block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text near byte {exc.start}; is it the "
                        "right file and format?") from exc


@dataclass
class TrackReader:
    """An opened track file; `chunks()` streams it."""

    path: Path
    format: str
    mapping: dict[str, str] = field(default_factory=dict)
    block_bytes: int = BLOCK_BYTES
    fps_hint: float | None = None
    default_units: str = "m"
    columns: tuple[str, ...] = ()
    """Canonical columns the file has (after --map)."""
    ignored: int = 0
    rows_read: int = 0
    bytes_read: int = 0
    size: int = 0
    kpf: KpfOptions | None = None
    """KPF side files and time base (default: found beside the file)."""
    _header: list[str] = field(default_factory=list)
    _kpf: KpfGeomReader | None = None

    @property
    def kpf_geom(self) -> KpfGeomReader | None:
        """The KPF geom reader of an opened KPF file (its measured person heights), else
        None."""
        return self._kpf

    # ------------------------------------------------------------------ opening
    def open(self) -> TrackReader:
        try:
            self.size = self.path.stat().st_size
        except OSError as exc:
            raise UserError(f"{self.path}: cannot read the file ({exc.strerror}); check "
                            "the path") from exc
        if self.path.is_dir():
            raise UserError(f"{self.path} is a directory; name the track file inside it")
        opener = {"canonical-csv": self._open_csv, "canonical-parquet": self._open_parquet,
                  "jsonl": self._open_jsonl, "mot": self._open_mot, "eth": self._open_eth,
                  "kpf": self._open_kpf}
        if self.format not in opener:
            raise UserError(f"--format {self.format!r}: choose one of {', '.join(FORMATS)}")
        opener[self.format]()
        return self

    def _require(self, found: list[str]) -> None:
        """Map file columns to canonical names; a missing required column is fatal."""
        present = []
        for name in CANONICAL:
            if self.mapping.get(name, name) in found:
                present.append(name)
        missing = [c for c in REQUIRED if c not in present]
        if missing:
            raise UserError(
                f"{self.path}: missing required column(s) {', '.join(missing)}; the file has "
                f"{', '.join(found) or 'no columns'}. Rename them or pass --map "
                f"{missing[0]}=<column>")
        self.columns = tuple(present)

    def _open_csv(self) -> None:
        with open_binary(self.path) as fh:
            first = fh.readline()
        check_utf8(first, self.path)
        header = [h.strip().strip('"') for h in first.decode().rstrip("\r\n").split(",")]
        if not first.strip():
            raise UserError(f"{self.path}: empty file; a canonical CSV starts with a header "
                            f"({', '.join(CANONICAL)})")
        self._header = header
        self._require(header)

    def _open_parquet(self) -> None:
        try:
            schema = pq.read_schema(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{self.path}: not a readable Parquet file ({exc}); check the "
                            "file or pass the right --format") from exc
        self._require(list(schema.names))

    def _open_jsonl(self) -> None:
        with open_binary(self.path) as fh:
            for n, line in enumerate(fh):
                if n > 1000:
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    self._require(list(obj))
                    # Objects differ line by line: an optional field (class, confidence, t)
                    # absent from the first one is still read where a later one has it, as
                    # POST /rpc/ingest_batch reads each point's own keys.
                    self.columns = tuple(c for c in CANONICAL
                                         if c in self.columns or c in OPTIONAL)
                    return
        raise UserError(f"{self.path}: no JSON object in the first lines; JSONL has one "
                        'object per line such as {"track_id": "1", "frame": 0, "x": 1.0, ...}')

    def _open_mot(self) -> None:
        self.default_units = "px"
        self.columns = ("track_id", "frame", "x", "y", "class", "confidence")
        with open_binary(self.path) as fh:
            first = fh.readline()
        check_utf8(first, self.path)
        if first.strip() and len(first.split(b",")) < 7:
            raise UserError(f"{self.path}: not MOTChallenge text (expected "
                            "frame,id,left,top,w,h,conf,class,visibility)")
        for ini in (self.path.parent / "seqinfo.ini", self.path.parent.parent / "seqinfo.ini"):
            if ini.is_file():
                cfg = configparser.ConfigParser()
                try:
                    cfg.read(ini)
                    self.fps_hint = float(cfg["Sequence"]["frameRate"])
                except (KeyError, ValueError, configparser.Error) as exc:
                    raise UserError(f"{ini}: no readable [Sequence] frameRate; fix it or "
                                    "pass --fps") from exc
                break

    def _open_eth(self) -> None:
        self.columns = ("track_id", "frame", "x", "y")
        with open_binary(self.path) as fh:
            head = fh.read(65536)
        check_utf8(head[: head.rfind(b"\n") + 1] or head, self.path)
        lines = [ln.split() for ln in head.decode(errors="replace").splitlines() if ln.strip()]
        if lines and len(lines[0]) < 4:
            raise UserError(f"{self.path}: not ETH/UCY text (expected 'frame ped_id x y', "
                            "tab or space separated)")
        # Recorded at 2.5 Hz: frame numbers step by k, so the frame rate is 2.5·k.
        steps: dict[str, float] = {}
        diffs: list[float] = []
        for parts in lines:
            try:
                frame, pid = float(parts[0]), parts[1]
            except (ValueError, IndexError):
                continue
            if pid in steps and frame > steps[pid]:
                diffs.append(frame - steps[pid])
            steps[pid] = frame
        if diffs:
            self.fps_hint = 2.5 * min(diffs)

    def _open_kpf(self) -> None:
        options = self.kpf or KpfOptions()
        self._kpf = KpfGeomReader(self.path, options, self.block_bytes).open()
        self.columns = ("track_id", "frame", "t", "x", "y", "class")
        self.fps_hint = self._kpf.fps

    # ------------------------------------------------------------------ streaming
    def chunks(self) -> Iterator[pl.DataFrame]:
        stream = {"canonical-csv": self._csv_chunks, "canonical-parquet": self._parquet_chunks,
                  "jsonl": self._jsonl_chunks, "mot": self._mot_chunks,
                  "eth": self._eth_chunks, "kpf": self._kpf_chunks}[self.format]
        for frame in stream():
            self.rows_read += frame.height
            yield frame

    def _text_blocks(self, skip_header: bool) -> Iterator[bytes]:
        with open_binary(self.path) as fh:
            if skip_header:
                self.bytes_read += len(fh.readline())
            for block in line_blocks(fh, self.block_bytes):
                self.bytes_read += len(block)
                check_utf8(block, self.path)
                yield block

    def _parse_text(self, block: bytes, names: list[str], sep: str) -> pl.DataFrame:
        try:
            return pl.read_csv(io.BytesIO(block), has_header=False, new_columns=names,
                               separator=sep, schema={n: pl.String for n in names},
                               row_index_name=ROW, row_index_offset=self.rows_read + 1)
        except (pl.exceptions.PolarsError, ValueError) as exc:
            msg = str(exc).strip().splitlines()[0]
            raise UserError(f"{self.path}: cannot parse near data row {self.rows_read + 1} "
                            f"({msg}); is it the right --format?") from exc

    def _canonical(self, frame: pl.DataFrame) -> pl.DataFrame:
        cols = [pl.col(self.mapping.get(c, c)).alias(c) if c in self.columns
                else pl.lit(None, dtype=pl.String).alias(c) for c in CANONICAL]
        return frame.select(pl.col(ROW).cast(pl.Int64), *cols)

    def _csv_chunks(self) -> Iterator[pl.DataFrame]:
        for block in self._text_blocks(skip_header=True):
            yield self._canonical(self._parse_text(block, self._header, ","))

    def _parquet_chunks(self) -> Iterator[pl.DataFrame]:
        wanted = [self.mapping.get(c, c) for c in self.columns]
        try:
            pf = pq.ParquetFile(self.path)
            total = max(pf.metadata.num_rows, 1)
            for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                frame = frame.with_row_index(ROW, offset=self.rows_read + 1)
                self.bytes_read = int(self.size * (self.rows_read + frame.height) / total)
                yield self._canonical(frame)
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{self.path}: the Parquet file is damaged near row "
                            f"{self.rows_read + 1} ({exc})") from exc

    def _jsonl_chunks(self) -> Iterator[pl.DataFrame]:
        names = [self.mapping.get(c, c) for c in self.columns]
        for block in self._text_blocks(skip_header=False):
            rows: list[int] = []
            data: dict[str, list[str | None]] = {n: [] for n in names}
            bad: list[int] = []
            for i, line in enumerate(block.splitlines(), start=self.rows_read + 1):
                obj: Any
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = None
                if not isinstance(obj, dict):
                    bad.append(i)
                    obj = {}
                rows.append(i)
                for n in names:
                    v = obj.get(n)
                    data[n].append(None if v is None else
                                   v if isinstance(v, str) else json.dumps(v))
            frame = pl.DataFrame({ROW: rows, **data}, schema={ROW: pl.Int64,
                                                              **{n: pl.String for n in names}})
            # A line that is not a JSON object is reported by validation as `bad_json`.
            yield self._canonical(frame).with_columns(pl.col(ROW).is_in(bad).alias(BAD))

    def _mot_chunks(self) -> Iterator[pl.DataFrame]:
        gt = self.path.name.lower().startswith("gt")
        for block in self._text_blocks(skip_header=False):
            n_cols = len(block.split(b"\n", 1)[0].split(b","))
            if n_cols < 6:
                raise UserError(
                    f"{self.path}: data row {self.rows_read + 1} has {n_cols} comma-separated "
                    "field(s); MOTChallenge gt.txt/det.txt rows need at least 6 "
                    "(frame,id,left,top,width,height,…); is it the right --format?")
            names = (MOT_COLUMNS + [f"extra{i}" for i in range(max(0, n_cols - 9))])[:n_cols]
            raw = self._parse_text(block, names, ",")
            num = {c: pl.col(c).str.strip_chars().cast(pl.Float64, strict=False)
                   for c in ("left", "top", "w", "h", "conf", "class") if c in names}
            frame = raw.select(
                pl.col(ROW).cast(pl.Int64),
                pl.col("id").str.strip_chars().cast(pl.Float64, strict=False)
                .cast(pl.Int64, strict=False).cast(pl.String)
                .fill_null(pl.col("id")).alias("track_id"),
                pl.col("frame").str.strip_chars().alias("frame"),
                pl.lit(None, dtype=pl.Float64).alias("t"),
                (num["left"] + num["w"] / 2).alias("x"),
                (num["top"] + num["h"]).alias("y"),
                (num["class"].cast(pl.Int64, strict=False)
                 .replace_strict(MOT_CLASSES, default=None, return_dtype=pl.String)
                 if "class" in num else pl.lit(None, dtype=pl.String)).alias("class"),
                (pl.lit(None, dtype=pl.Float64) if gt or "conf" not in num
                 else num["conf"]).alias("confidence"),
                (num["conf"] == 0).fill_null(False).alias("_ignore") if gt and "conf" in num
                else pl.lit(False).alias("_ignore"),
            )
            self.ignored += int(frame["_ignore"].sum())
            yield frame.filter(~pl.col("_ignore")).drop("_ignore")

    def _kpf_chunks(self) -> Iterator[pl.DataFrame]:
        assert self._kpf is not None
        for frame, size in self._kpf.chunks():
            self.bytes_read += size
            yield frame

    def _eth_chunks(self) -> Iterator[pl.DataFrame]:
        for block in self._text_blocks(skip_header=False):
            lines = pl.DataFrame({"line": block.decode().splitlines()})
            lines = lines.with_row_index(ROW, offset=self.rows_read + 1).filter(
                pl.col("line").str.strip_chars() != "")
            parts = (pl.col("line").str.strip_chars().str.replace_all(r"\s+", " ")
                     .str.split_exact(" ", 3))
            frame = lines.select(pl.col(ROW).cast(pl.Int64), parts.alias("p")).unnest("p")
            frame.columns = [ROW, "frame", "track_id", "x", "y"]
            pid = pl.col("track_id").cast(pl.Float64, strict=False)
            yield frame.select(
                ROW,
                pl.when(pid.is_not_null() & (pid == pid.floor()))
                .then(pid.cast(pl.Int64, strict=False).cast(pl.String))
                .otherwise(pl.col("track_id")).alias("track_id"),
                "frame", pl.lit(None, dtype=pl.String).alias("t"), "x", "y",
                pl.lit(None, dtype=pl.String).alias("class"),
                pl.lit(None, dtype=pl.String).alias("confidence"))


def open_tracks(path: Path, fmt: str | None = None, mapping: dict[str, str] | None = None,
                block_bytes: int = BLOCK_BYTES, kpf: KpfOptions | None = None) -> TrackReader:
    """Open a track file (format from --format or the file name)."""
    if mapping and (fmt or detect_format(path)) in ("mot", "eth", "kpf"):
        raise UserError("--map applies to canonical CSV, Parquet and JSONL files only")
    reader = TrackReader(path, fmt or detect_format(path), dict(mapping or {}), block_bytes,
                         kpf=kpf)
    return reader.open()


__all__ = ["OPTIONAL", "TrackReader", "detect_format", "open_tracks", "parse_mapping"]
