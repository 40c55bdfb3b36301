"""Reading an import file as it arrives: gunzip and decode in bounded pieces, split lines, then
turn CSV records or NDJSON lines into events shaped as the ingest API takes them.

Nothing here holds more than one network chunk, one inflated piece and one unfinished row.
"""

import codecs
import csv
import re
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from pulseboard.core.errors import PulseboardError, Unprocessable
from pulseboard.ingest.body import MalformedBody, PayloadTooLarge, UnsupportedMediaType
from pulseboard.models import ImportFormat

# The most bytes decoded and split in one step; a gzip chunk inflates no further at a time,
# so that a small bomb never expands whole.
PIECE_BYTES = 64 * 1024
# A valid event is far smaller (URLs 4 KB each, properties 8 KB); longer is a broken file,
# such as a CSV quote never closed, which would otherwise swallow the rest of it.
MAX_ROW_CHARS = 1_000_000
# csv refuses a field past 131,072 characters by default, and then reads on from inside it: the
# rest of a quoted field became rows of its own. A field as long as a row may be is read whole
# (and refused by the event's own limits). The limit is the process's: raised, never lowered.
csv.field_size_limit(max(csv.field_size_limit(), MAX_ROW_CHARS))
# Where a CSV line ends: after "\n", or after a "\r" that no "\n" follows (a spreadsheet on an
# old Mac saves bare "\r"); "\r\n" stays one line end.
_CSV_LINE_ENDS = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")
# The columns that are fields of an event; every other CSV column becomes a property.
EVENT_COLUMNS = frozenset(
    {"event", "distinct_id", "session_id", "timestamp", "page_url", "referrer", "uuid"}
)


FORMATS = {
    "text/csv": ImportFormat.CSV,
    "application/x-ndjson": ImportFormat.NDJSON,
    "application/ndjson": ImportFormat.NDJSON,
}


class InvalidFile(Unprocessable):
    code = "invalid_file"


class UploadInterrupted(PulseboardError):
    code = "upload_interrupted"
    detail = "The upload stopped before the end of the file"


@dataclass(frozen=True, slots=True)
class Upload:
    """What the request's headers say about the file."""

    format: ImportFormat
    gzipped: bool

    @classmethod
    def of(cls, headers: Mapping[str, str], limit: int) -> "Upload":
        media_type, *parameters = headers.get("content-type", "").split(";")
        file_format = FORMATS.get(media_type.strip().lower())
        if file_format is None:
            raise UnsupportedMediaType(
                f"Content-Type {media_type.strip()!r} is not accepted; send text/csv or "
                "application/x-ndjson"
            )
        named = _parameters(parameters)
        charset = named.get("charset", "")
        if charset not in ("", "utf-8", "utf8"):
            raise UnsupportedMediaType(f"The charset {charset!r} is not accepted; send UTF-8")
        # RFC 4180's `header` parameter: a CSV import is read by the names its header gives.
        if file_format is ImportFormat.CSV and named.get("header", "present") != "present":
            raise UnsupportedMediaType(
                "A CSV import needs a header row naming its columns (header=present)"
            )
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip"):
            raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not accepted; use gzip")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The file is over the limit of {limit} bytes")
        return cls(file_format, gzipped=encoding == "gzip")


def _parameters(parameters: list[str]) -> dict[str, str]:
    """A media type's parameters (`charset=utf-8`), names and values in lower case."""
    named: dict[str, str] = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip():
            named[name.strip().lower()] = value.strip().strip('"').lower()
    return named


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the file: the event's fields as the ingest API takes them, or why not."""

    line: int  # where the row starts in the file, counting from 1 (a CSV header is line 1)
    chars: int
    values: dict[str, Any] | None = None
    error: str | None = None


async def read_rows(
    body: AsyncIterator[bytes], file_format: ImportFormat, *, gzipped: bool, limit: int
) -> AsyncGenerator[list[Row], None]:
    """The rows of an uploaded file, a network chunk's worth at a time."""
    lines = LineSplitter(bare_cr=file_format is ImportFormat.CSV)
    rows: CsvRows | NdjsonRows = CsvRows() if file_format is ImportFormat.CSV else NdjsonRows()
    async for text in decoded(body, gzipped=gzipped, limit=limit):
        if batch := rows.feed(lines.feed(text), final=False):
            yield batch
    if batch := rows.feed(lines.finish(), final=True):
        yield batch
    rows.check_complete()


async def decoded(body: AsyncIterator[bytes], *, gzipped: bool, limit: int) -> AsyncIterator[str]:
    """The body as text, inflated and decoded piece by piece, refused past `limit` bytes."""
    too_large = PayloadTooLarge(f"The file is over the limit of {limit} bytes")
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    gunzip = Gunzip() if gzipped else None
    received = size = 0
    async for chunk in body:
        received += len(chunk)
        if received > limit:
            raise too_large
        for piece in gunzip.feed(chunk) if gunzip else _pieces(chunk):
            size += len(piece)
            if size > limit:
                raise too_large
            yield _decode(decoder, piece, size - len(piece))
    if gunzip is not None:
        gunzip.finish()
    yield _decode(decoder, b"", size, final=True)


def _pieces(chunk: bytes) -> Iterator[bytes]:
    # A server may hand over a large body in one chunk: its text and rows come a piece at a time.
    for start in range(0, len(chunk), PIECE_BYTES):
        yield chunk[start : start + PIECE_BYTES]


def _decode(
    decoder: codecs.IncrementalDecoder, data: bytes, offset: int, final: bool = False
) -> str:
    try:
        text: str = decoder.decode(data, final)
    except UnicodeDecodeError as exc:
        raise MalformedBody(
            f"The file is not valid UTF-8 (near byte {offset + exc.start})"
        ) from exc
    return text


class Gunzip:
    """Inflates gzip (several members too, as `cat a.gz b.gz` makes) in bounded pieces."""

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._inflater.eof and data:
                self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                piece = self._inflater.decompress(data, PIECE_BYTES)
            except zlib.error as exc:
                raise MalformedBody(f"The file is not valid gzip: {exc}") from exc
            if piece:
                yield piece
            data = (
                self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
            )
            # A full piece may leave output inside zlib even when all input is taken.
            if not data and len(piece) < PIECE_BYTES:
                return

    def finish(self) -> None:
        if not self._inflater.eof:
            raise MalformedBody("The gzip file is truncated")


class LineSplitter:
    """Complete lines, each with its line end; the unfinished last line waits for more text.

    Lines end at "\\n", and with `bare_cr` (CSV) also at a "\\r" that no "\\n" follows. A "\\r"
    that ends the text so far waits too: the next piece may begin with the "\\n" of a "\\r\\n".
    """

    def __init__(self, *, bare_cr: bool = False) -> None:
        self._tail = ""
        self._bare_cr = bare_cr
        self.lines = 0

    def feed(self, text: str) -> list[str]:
        text = self._tail + text
        lines = _csv_lines(text) if self._bare_cr and "\r" in text else _lf_lines(text)
        self._tail = lines.pop()
        if not self._tail and lines and lines[-1].endswith("\r"):
            self._tail = lines.pop()
        if len(self._tail) > MAX_ROW_CHARS:
            raise InvalidFile(
                f"Line {self.lines + len(lines) + 1} is over {MAX_ROW_CHARS} characters long"
            )
        self.lines += len(lines)
        return lines

    def finish(self) -> list[str]:
        tail, self._tail = self._tail, ""
        return [tail] if tail else []


def _lf_lines(text: str) -> list[str]:
    """The text cut after each "\\n", each line with its end; the unended rest last."""
    *lines, rest = text.split("\n")
    return [line + "\n" for line in lines] + [rest]


def _csv_lines(text: str) -> list[str]:
    """The text cut after each CSV line end, each line with its end; the unended rest last.

    Files keep to one kind of line end, so the common two are cut with str.split (the regular
    expression is 16 times slower on a file of "\\r\\n" lines); a mix takes the expression.
    """
    bare = text.count("\r") - text.count("\r\n") - text.endswith("\r")
    if bare == 0:  # "\r\n" or "\n" ends, and perhaps a "\r" whose "\n" comes next
        return _lf_lines(text)
    if "\n" not in text:  # bare "\r" ends only
        *lines, rest = text.split("\r")
        return [line + "\r" for line in lines] + [rest]
    return _CSV_LINE_ENDS.split(text)


class _Feed:
    """A chunk's lines, handed to csv.reader one at a time; notes when they ran out."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.position = 0
        self.ran_out = False

    def __iter__(self) -> "_Feed":
        return self

    def __next__(self) -> str:
        if self.position == len(self.lines):
            self.ran_out = True
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


class CsvRows:
    """CSV records (quoted fields may span lines) after a header row that names the columns."""

    def __init__(self) -> None:
        self._columns: list[tuple[str, bool] | None] | None = None
        self._held: list[str] = []  # the lines of a record that the next chunk completes
        self._next_line = 1  # the file line of the first line of the next feed

    def feed(self, lines: list[str], *, final: bool) -> list[Row]:
        lines = self._held + lines
        first_line = self._next_line
        self._held = []
        feed = _Feed(lines)
        reader = csv.reader(feed, strict=False)
        rows: list[Row] = []
        while True:
            start = feed.position
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rows.append(Row(first_line + start, _chars(lines, start, feed), error=str(exc)))
                continue
            if feed.ran_out and not final:
                # csv.reader hands out a record cut at the end of its input: wait for the rest.
                self._held = lines[start:]
                if sum(map(len, self._held)) > MAX_ROW_CHARS:
                    raise InvalidFile(
                        f"The row at line {first_line + start} is over {MAX_ROW_CHARS} "
                        "characters long (is a quote left open?)"
                    )
                break
            if fields:
                line, chars = first_line + start, _chars(lines, start, feed)
                if self._columns is None:
                    self._columns = _header(fields)
                else:
                    rows.append(self._row(line, chars, fields))
        self._next_line = first_line + len(lines) - len(self._held)
        return rows

    def check_complete(self) -> None:
        if self._columns is None:
            raise InvalidFile("The file is empty: a CSV import needs a header row")

    def _row(self, line: int, chars: int, fields: list[str]) -> Row:
        columns = self._columns
        assert columns is not None
        if len(fields) > len(columns):
            return Row(
                line, chars, error=f"has {len(fields)} fields; the header has {len(columns)}"
            )
        values: dict[str, Any] = {}
        properties: dict[str, str] = {}
        # Missing trailing fields and empty cells are absent, as an exported sheet leaves them.
        for column, value in zip(columns, fields, strict=False):
            if value and column is not None:
                name, is_field = column
                (values if is_field else properties)[name] = value
        values["properties"] = properties
        return Row(line, chars, values=values)


def _header(fields: list[str]) -> list[tuple[str, bool] | None]:
    columns: list[tuple[str, bool] | None] = []
    seen: set[str] = set()
    for field in fields:
        name = field.strip()
        if not name:
            columns.append(None)  # a trailing comma's column: its cells are ignored
            continue
        is_field = name.lower() in EVENT_COLUMNS
        if is_field:
            name = name.lower()
        if name in seen:
            raise InvalidFile(f"The header names the column {name!r} twice")
        seen.add(name)
        columns.append((name, is_field))
    if "event" not in seen:
        raise InvalidFile(
            "The header has no `event` column; the columns are event, distinct_id, session_id, "
            "timestamp, page_url, referrer, uuid, and any others become properties"
        )
    return columns


def _chars(lines: list[str], start: int, feed: _Feed) -> int:
    return sum(len(line) for line in lines[start : feed.position])


class NdjsonRows:
    """One JSON object per line, each an event as the ingest API takes it; blank lines skipped."""

    def __init__(self) -> None:
        self._next_line = 1

    def feed(self, lines: list[str], *, final: bool) -> list[Row]:
        rows: list[Row] = []
        for offset, line in enumerate(lines):
            if not line or line.isspace():
                continue
            number = self._next_line + offset
            try:
                values = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                rows.append(Row(number, len(line), error=f"is not valid JSON: {exc}"))
                continue
            if isinstance(values, dict):
                rows.append(Row(number, len(line), values=values))
            else:
                rows.append(Row(number, len(line), error="is not a JSON object"))
        self._next_line += len(lines)
        return rows

    def check_complete(self) -> None:
        """Any number of lines, none included, is a complete NDJSON file."""
