"""Read a user's file into a table of text cells, one row per record, without losing any record.

Every record ends up either in :attr:`RawTable.table` (well-formed: as many fields as the header) or in
:attr:`RawTable.rejects` with its line number and a reason (``ragged_row``, ``unbalanced_quote``, ``bad_encoding``),
so ``len(table) + len(rejects) == records`` always holds. Values stay text here; typing and validation happen in
:mod:`tools.importer`.

CSV handling:

* encoding: a BOM decides (UTF-8, UTF-16); else strict UTF-8; else strict GB18030 (a superset of GBK / GB2312, what
  Chinese shop back-ends export); else UTF-8 with the undecodable lines set aside as ``bad_encoding``.
* delimiter: an Excel ``sep=`` line, else the candidate (``, ; TAB |``) that splits the header most consistently
  with the next lines.
* quoting: RFC 4180 with strict quote rules. A quoted field may span lines; a quote that is never closed properly
  costs only its own line: that line is rejected as ``unbalanced_quote`` and reading resumes on the next line.
* blank lines are not records.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from tools.errors import ImportFileError

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
LINE_COLUMN = "_line"
_SURROGATE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class Reject:
    """A record that could not be split into fields."""

    line: int
    reason: str
    raw: str


@dataclass
class RawTable:
    """A file read as text cells.

    Attributes:
        table: one string column per source column plus ``_line`` (the record's first line, or row number).
        rejects: records that could not be split into the header's fields.
        encoding: the text encoding used (None for binary formats).
        delimiter: the field delimiter used (None for binary formats).
    """

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None

    @property
    def columns(self) -> list[str]:
        return [c for c in self.table.column_names if c != LINE_COLUMN]

    @property
    def records(self) -> int:
        return self.table.num_rows + len(self.rejects)


def read_file(path: Path, *, encoding: str | None = None, delimiter: str | None = None,
              sheet: str | None = None) -> RawTable:
    """Read a CSV/TSV/TXT, Parquet or Excel (.xlsx) file.

    Raises:
        ImportFileError: the file is missing, empty, not a table, or of an unknown format. Nothing has been
            changed anywhere when this is raised.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path} does not exist or is not a file.")
    if path.stat().st_size == 0:
        raise ImportFileError(f"{path} is empty.")
    with path.open("rb") as fh:
        head = fh.read(8)
    suffix = path.suffix.lower()
    if head.startswith(b"PAR1") or suffix == ".parquet":
        return _read_parquet(path)
    if head.startswith(b"PK\x03\x04") or suffix in (".xlsx", ".xlsm"):
        return _read_excel(path, sheet)
    if suffix == ".xls":
        raise ImportFileError(f"{path} is an old .xls workbook. Save it as .xlsx or CSV and import that.")
    return read_csv_bytes(path.read_bytes(), name=str(path), encoding=encoding, delimiter=delimiter)


def _unique_headers(names: list[str]) -> list[str]:
    """Give blank and repeated headers distinct names (``column_3``, ``price_2``)."""
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(names):
        name = (raw or "").replace("\ufeff", "").strip() or f"column_{i + 1}"
        if name == LINE_COLUMN:
            name = "line_"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def _table_from_rows(header: list[str], rows: list[list[str]], lines: list[int]) -> pa.Table:
    """Rows of ``len(header)`` cells to a table. Arrow transposes in C, far faster than ``zip(*rows)``."""
    import pyarrow.compute as pc

    nested = pa.array(rows, pa.list_(pa.string()))
    arrays = {name: pc.list_element(nested, i) if rows else pa.array([], pa.string())
              for i, name in enumerate(header)}
    arrays[LINE_COLUMN] = pa.array(lines, pa.int64())
    return pa.table(arrays)


# --- text files -----------------------------------------------------------------------------------------------


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Decode file bytes; return (text, encoding name). Undecodable bytes survive as lone surrogates."""
    if encoding:
        try:
            return data.decode(encoding), encoding
        except LookupError as err:
            raise ImportFileError(f"Unknown encoding {encoding!r}. Try utf-8, gb18030 or latin-1.") from err
        except UnicodeDecodeError as err:
            raise ImportFileError(f"The file is not valid {encoding} (byte {err.start}). Leave --encoding out to "
                                  "detect it.") from err
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="surrogateescape"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if b"\x00" in data[:8192]:
        raise ImportFileError("This looks like a binary file, not a CSV, Parquet or Excel file.")
    for name in ("utf-8", "gb18030"):
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="surrogateescape"), "utf-8 (with invalid lines)"


def _sniff_delimiter(lines: list[str]) -> str:
    sample = [ln for ln in lines[:50] if ln.strip()]
    if not sample:
        return ","
    best, best_score = ",", -1.0
    for cand in CANDIDATE_DELIMITERS:
        counts = [next(csv.reader([ln], delimiter=cand), []).__len__() for ln in sample[:20]]
        header_fields = counts[0]
        if header_fields < 2:
            continue
        consistent = sum(1 for c in counts if c == header_fields) / len(counts)
        score = consistent * 100 + header_fields
        if score > best_score:
            best, best_score = cand, score
    return best


def read_csv_bytes(data: bytes, *, name: str = "<data>", encoding: str | None = None,
                   delimiter: str | None = None) -> RawTable:
    """Split CSV bytes into records (see the module docstring for the rules)."""
    text, used_encoding = decode(data, encoding)
    lines = list(io.StringIO(text, newline=""))
    start = 0
    if lines and lines[0].lower().startswith("sep=") and len(lines[0].rstrip("\r\n")) == 5:
        delimiter = delimiter or lines[0][4]
        start = 1
    # The header is the first non-blank line.
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines):
        raise ImportFileError(f"{name} has no header line.")
    delim = delimiter or _sniff_delimiter(lines[start:])
    if len(delim) != 1:
        raise ImportFileError(f"The delimiter must be one character, not {delim!r}.")
    header = _unique_headers(next(csv.reader([lines[start]], delimiter=delim)))
    width = len(header)
    rows: list[list[str]] = []
    row_lines: list[int] = []
    rejects: list[Reject] = []
    bad_bytes = used_encoding.endswith("(with invalid lines)")

    def raw_text(first: int, last: int) -> str:  # 1-based physical lines first..last
        text = "".join(lines[first - 1:last]).rstrip("\r\n")
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if bad_bytes else text

    # This loop runs once per record (a million times for a big export), so it is kept flat: a reader over the
    # remaining lines, restarted after the line of a broken quote.
    pos = start + 1  # index into `lines` of the first line the current reader sees
    while pos < len(lines):
        reader = csv.reader(itertools.islice(lines, pos, None), delimiter=delim, strict=True)
        consumed = 0  # lines the current reader has used so far
        try:
            for cells in reader:
                first = pos + consumed + 1
                consumed = reader.line_num
                if not cells:
                    continue  # an empty line is not a record
                if len(cells) != width or (bad_bytes and any(_SURROGATE.search(c) for c in cells)):
                    cells = _irregular(cells, width, bad_bytes)
                    if isinstance(cells, str):
                        rejects.append(Reject(first, cells, raw_text(first, pos + consumed)))
                        continue
                rows.append(cells)
                row_lines.append(first)
            break
        except csv.Error:
            # A quote opened and never closed properly: set its first line aside and resume on the next one.
            bad = pos + consumed
            rejects.append(Reject(bad + 1, "unbalanced_quote", raw_text(bad + 1, bad + 1)))
            pos = bad + 1
    return RawTable(_table_from_rows(header, rows, row_lines), rejects, used_encoding, delim)


def _irregular(cells: list[str], width: int, bad_bytes: bool) -> list[str] | str:
    """Repair a record that is not exactly ``width`` clean fields, or return the reason code to reject it."""
    if bad_bytes and any(_SURROGATE.search(c) for c in cells):
        return "bad_encoding"
    if len(cells) > width and not any(c.strip() for c in cells[width:]):
        return cells[:width]  # trailing empty fields, as spreadsheets write them
    if len(cells) != width:
        return "ragged_row"
    return cells


# --- binary formats -------------------------------------------------------------------------------------------


def _read_parquet(path: Path) -> RawTable:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ImportFileError(f"{path} is not a readable Parquet file ({err}).") from err
    header = _unique_headers(table.column_names)
    columns = {}
    for name, col in zip(header, table.columns):
        if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
            col = pc.strftime(col, format="%Y-%m-%d %H:%M:%S")
        columns[name] = col.cast(pa.string())
    columns[LINE_COLUMN] = pa.array(range(1, table.num_rows + 1), pa.int64())
    return RawTable(pa.table(columns))


def _read_excel(path: Path, sheet: str | None) -> RawTable:
    import zipfile

    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        raise ImportFileError(f"{path} is not a readable .xlsx workbook ({err}).") from err
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ImportFileError(f"{path} has no sheet {sheet!r}; it has {', '.join(book.sheetnames)}.")
        ws = book[sheet] if sheet else book.worksheets[0]
        header: list[str] | None = None
        rows: list[list[str]] = []
        lines: list[int] = []
        rejects: list[Reject] = []
        for row_no, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = ["" if v is None else _excel_text(v) for v in values]
            while cells and cells[-1] == "":
                cells.pop()
            if not cells:
                continue
            if header is None:
                header = _unique_headers(cells)
                continue
            if len(cells) > len(header):
                rejects.append(Reject(row_no, "ragged_row", "\t".join(cells)))
                continue
            rows.append(cells + [""] * (len(header) - len(cells)))
            lines.append(row_no)
    finally:
        book.close()
    if header is None:
        raise ImportFileError(f"{path} has no header row.")
    return RawTable(_table_from_rows(header, rows, lines), rejects)


def _excel_text(value: object) -> str:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
