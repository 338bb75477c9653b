"""Read one WARC response record at a known offset and turn its body into text.

The crawl records (warc_file, warc_offset, warc_length) of each response's gzip member, so
extraction seeks straight to it instead of scanning the file. Decoding follows what browsers
do: byte-order mark, then the HTTP charset, then a <meta> charset, then detection; a label
that does not decode strictly falls through to the next source, and the last resort decodes
with replacement characters, so bytes never raise.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

# WHATWG maps these labels to windows-1252; pages labelled latin-1 routinely use its
# 0x80-0x9F punctuation (curly quotes, dashes).
_CP1252_ALIASES = {
    "iso-8859-1",
    "iso8859-1",
    "latin-1",
    "latin1",
    "l1",
    "ascii",
    "us-ascii",
    "iso_8859-1",
    "cp819",
    "ibm819",
    "windows-1252",
    "cp1252",
}
# WHATWG's supersets: pages labelled with the narrow legacy charset use the wider one's bytes.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
# Only the head is searched for <meta>: browsers look at the first 1024 bytes; pages with
# long inline scripts before the meta are common enough to look a little further.
_META_WINDOW = 8192
_DETECT_WINDOW = 64_000


_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


class DecodeError(ValueError):
    """The body is not text (binary labelled as HTML)."""


@dataclass(slots=True)
class WarcResponse:
    target_uri: str | None
    status: int | None
    content_type: str | None
    body: bytes


def read_response(path: str | Path, offset: int, length: int | None) -> WarcResponse:
    """The response record whose gzip member starts at `offset` (`length` bytes long).

    The payload is returned with transfer and content encodings undone (warcio's
    content_stream), which is what a browser would render.
    """
    with open(path, "rb") as f:
        f.seek(offset)
        raw = f.read(length) if length else f.read()
    for record in ArchiveIterator(io.BytesIO(raw)):
        if record.rec_type not in ("response", "resource"):
            continue
        status = None
        ctype = None
        if record.http_headers is not None:
            code = record.http_headers.get_statuscode()
            status = int(code) if code and code.isdigit() else None
            ctype = record.http_headers.get_header("Content-Type")
        body = record.content_stream().read()
        return WarcResponse(record.rec_headers.get_header("WARC-Target-URI"), status, ctype, body)
    raise ValueError(f"no response record at {path}:{offset}")


def _norm_codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _CP1252_ALIASES:
        return "cp1252"
    label = _SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _try(body: bytes, codec: str | None) -> str | None:
    if codec is None:
        return None
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET.search(content_type)
    return _norm_codec(m.group(1)) if m else None


def meta_charset(body: bytes) -> str | None:
    m = _META_CHARSET.search(body[:_META_WINDOW])
    return _norm_codec(m.group(1).decode("ascii", "ignore")) if m else None


def _looks_binary(body: bytes) -> bool:
    """NULs or many control bytes near the start: an image or archive served as text/html."""
    head = body[:4096]
    if not head:
        return False
    if b"\x00" in head:
        return True
    ctrl = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return ctrl / len(head) > 0.05


def decode_html(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """(text, codec used). Raises DecodeError only for bodies that are not text at all."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, errors="replace"), codec
    if _looks_binary(body):
        raise DecodeError("binary body")
    for label in (header_charset(content_type), meta_charset(body), "utf-8"):
        text = _try(body, label)
        if text is not None and label is not None:
            return text, label
    if _mostly_utf8(body):
        return body.decode("utf-8", errors="replace"), "utf-8"
    detected = _detect(body)
    if detected:
        return body.decode(detected, errors="replace"), detected
    return body.decode("cp1252", errors="replace"), "cp1252"


def _mostly_utf8(body: bytes) -> bool:
    """More valid multi-byte UTF-8 characters than invalid sequences. Legacy single-byte text
    almost never forms valid multi-byte sequences, so its count of valid ones stays near 0."""
    text = body.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd") - body.count("\ufffd".encode())
    valid = sum(1 for ch in text if ch >= "\x80") - invalid - body.count("\ufffd".encode())
    return valid > invalid


def _detect(body: bytes) -> str | None:
    # Imported lazily: only pages whose labels all failed pay for detection.
    from charset_normalizer import from_bytes

    best = from_bytes(body[:_DETECT_WINDOW]).best()
    return _norm_codec(best.encoding) if best is not None else None
