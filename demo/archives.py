"""Local fake web archives in the real formats, for the demo and the tests.

`FakeArchive` answers like the Internet Archive and Common Crawl do:
- `/cdx/search/cdx?url=..&output=json|text&fl=..&filter=statuscode:200&closest=..&sort=closest
  &limit=..`: the Wayback CDX API (JSON: a header row then lists; text: space-separated lines);
- `/web/{timestamp}id_/{url}`: a raw capture, or a 302 to the nearest capture's own timestamp
  (as Wayback does), with `Memento-Datetime`;
- `/collinfo.json`: the list of crawls with their `cdx-api` URLs on this server;
- `/{crawl}-index?url=..&output=json`: a Common Crawl CDX server (JSON lines; 404 "No Captures
  found" when there is none);
- `/data/{filename}` with `Range: bytes=a-b`: byte ranges of the crawls' WARC files, built with
  warcio (every record its own gzip member), or a real Common Crawl WARC file added as it is.

Fault injection for tests: `faults[(kind, url)]` is a list of (status, Retry-After) answers
served before the real one (kind: "cdx", "raw", "cc_index", "cc_data"); `truncate` cuts the
byte range of the named URLs' records; `cc_rows` overrides an index row's fields (e.g. a
filename on a forbidden address); `raw_redirect[url]` answers the raw capture with a redirect.
`requests` lists every request path served. `handle()` is the whole server as a function, so
the demo proxy serves the archives as virtual hosts and `serve_archive()` runs it alone.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

Answer = tuple[int, dict[str, str], bytes]


def _ts_dt(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


@dataclass
class Snapshot:
    timestamp: str  # 14 digits
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200


@dataclass
class CCEntry:
    url: str
    timestamp: str
    filename: str
    offset: int
    length: int
    mime: str
    status: int


@dataclass
class FakeArchive:
    base: str = ""  # this server's URL as clients see it (set by serve_archive / the demo)
    wayback_base: str = ""  # where Wayback's redirects point, if not `base`
    wayback: dict[str, list[Snapshot]] = field(default_factory=dict)
    crawls: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (from, to) ISO
    cc_files: dict[str, bytearray] = field(default_factory=dict)  # filename -> WARC bytes
    cc_index: dict[str, list[CCEntry]] = field(default_factory=dict)  # crawl -> entries
    faults: dict[tuple[str, str], list[tuple[int, str | None]]] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)
    cc_rows: dict[str, dict[str, object]] = field(default_factory=dict)
    raw_redirect: dict[str, str] = field(default_factory=dict)
    cdx_api: dict[str, str] = field(default_factory=dict)  # crawl -> its listed index URL
    requests: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # time.monotonic() of each request
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- content ---------------------------------------------------------------------------
    def add_wayback(self, url: str, snap: Snapshot) -> None:
        self.wayback.setdefault(url, []).append(snap)
        self.wayback[url].sort(key=lambda s: s.timestamp)

    def add_crawl(self, crawl: str, start: str, end: str) -> None:
        self.crawls[crawl] = (start, end)
        self.cc_index.setdefault(crawl, [])

    def add_cc(
        self,
        crawl: str,
        url: str,
        timestamp: str,
        body: bytes,
        content_type: str = "text/html; charset=utf-8",
        status: int = 200,
    ) -> CCEntry:
        """Append a response record (its own gzip member) to the crawl's WARC file."""
        filename = f"crawl-data/{crawl}/segments/1/warc/{crawl}-00000.warc.gz"
        data = self.cc_files.setdefault(filename, bytearray())
        buf = io.BytesIO()
        writer = WARCWriter(buf, gzip=True)
        http = StatusAndHeaders(
            f"{status} OK",
            [("Content-Type", content_type), ("Content-Length", str(len(body)))],
            protocol="HTTP/1.1",
        )
        rec = writer.create_warc_record(
            url,
            "response",
            payload=io.BytesIO(body),
            http_headers=http,
            warc_headers_dict={"WARC-Date": _ts_dt(timestamp).strftime("%Y-%m-%dT%H:%M:%SZ")},
        )
        writer.write_record(rec)
        entry = CCEntry(
            url,
            timestamp,
            filename,
            len(data),
            len(buf.getvalue()),
            content_type.split(";")[0],
            status,
        )
        data += buf.getvalue()
        self.cc_index[crawl].append(entry)
        return entry

    def add_cc_warc_file(self, crawl: str, filename: str, data: bytes) -> list[CCEntry]:
        """Serve a real WARC file and index its response records (offset, length from warcio)."""
        self.cc_files[filename] = bytearray(data)
        out = []
        it = ArchiveIterator(io.BytesIO(data))
        for rec in it:
            if rec.rec_type != "response":
                continue
            url = rec.rec_headers.get_header("WARC-Target-URI")
            date = rec.rec_headers.get_header("WARC-Date")
            ctype = (rec.http_headers.get_header("Content-Type") or "").split(";")[0].strip()
            status = int(rec.http_headers.get_statuscode() or 0)
            rec.content_stream().read()
            ts = datetime.fromisoformat(date).strftime("%Y%m%d%H%M%S")
            entry = CCEntry(
                url,
                ts,
                filename,
                it.get_record_offset(),
                it.get_record_length(),
                ctype,
                status,
            )
            self.cc_index[crawl].append(entry)
            out.append(entry)
        return out

    # -- the server as a function ------------------------------------------------------------
    def _fault(self, kind: str, url: str) -> Answer | None:
        queue = self.faults.get((kind, url))
        if not queue:
            return None
        status, retry = queue.pop(0)
        headers = {"Content-Type": "text/plain"}
        if retry is not None:
            headers["Retry-After"] = retry
        return status, headers, f"fake archive: {status}\n".encode()

    def handle(self, target: str, headers: dict[str, str]) -> Answer:
        """Answer one GET; `target` is an origin-form path or an absolute URL (via a proxy)."""
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        with self.lock:
            self.requests.append(target)
            self.times.append(time.monotonic())
            return self._route(target, headers)

    def _route(self, target: str, headers: dict[str, str]) -> Answer:
        path, _, query = target.partition("?")
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        if path == "/cdx/search/cdx":
            return self._cdx(q)
        if path.startswith("/web/") and "id_/" in path:
            ts, _, url = path[len("/web/") :].partition("id_/")
            return self._raw(ts, unquote(url) + (f"?{query}" if query else ""))
        if path == "/collinfo.json":
            return self._collinfo()
        if path.endswith("-index") and path.strip("/")[: -len("-index")] in self.crawls:
            return self._cc_index(path.strip("/")[: -len("-index")], q)
        if path.startswith("/data/"):
            return self._cc_data(unquote(path[len("/data/") :]), headers)
        if path.startswith("/crawl-data/"):  # a data host of its own (the demo's)
            return self._cc_data(unquote(path[1:]), headers)
        return 404, {"Content-Type": "text/plain"}, b"fake archive: no such path\n"

    def _cdx(self, q: dict[str, str]) -> Answer:
        url = q.get("url", "")
        fault = self._fault("cdx", url)
        if fault:
            return fault
        fields = q.get("fl", "timestamp,original,statuscode,mimetype,length").split(",")
        snaps = list(self.wayback.get(url, []))
        flt = q.get("filter", "")
        if flt.startswith("statuscode:"):
            snaps = [s for s in snaps if str(s.status) == flt.split(":", 1)[1]]
        if q.get("sort") == "closest" and q.get("closest"):
            t = _ts_dt(q["closest"].ljust(14, "0")).timestamp()
            snaps.sort(key=lambda s: (abs(_ts_dt(s.timestamp).timestamp() - t), s.timestamp))
        snaps = snaps[: int(q.get("limit", "10000"))]

        def value(s: Snapshot, f: str) -> str:
            return {
                "timestamp": s.timestamp,
                "original": url,
                "statuscode": str(s.status),
                "mimetype": s.content_type.split(";")[0],
                "length": str(len(s.body)),
                "urlkey": url,
                "digest": "-",
            }[f]

        rows = [[value(s, f) for f in fields] for s in snaps]
        if q.get("output") == "json":
            body = json.dumps([fields, *rows]).encode() if rows else b"[]"
            return 200, {"Content-Type": "application/json"}, body
        text = "".join(" ".join(r) + "\n" for r in rows)
        return 200, {"Content-Type": "text/plain"}, text.encode()

    def _raw(self, ts: str, url: str) -> Answer:
        fault = self._fault("raw", url)
        if fault:
            return fault
        if url in self.raw_redirect:
            return 302, {"Location": self.raw_redirect[url]}, b""
        snaps = self.wayback.get(url, [])
        if not snaps:
            return 404, {"Content-Type": "text/html"}, b"<html>not in archive</html>"
        t = _ts_dt(ts.ljust(14, "0")).timestamp()
        best = min(snaps, key=lambda s: (abs(_ts_dt(s.timestamp).timestamp() - t), s.timestamp))
        if best.timestamp != ts:
            where = self.wayback_base or self.base
            return 302, {"Location": f"{where}/web/{best.timestamp}id_/{url}"}, b""
        headers = {
            "Content-Type": best.content_type,
            "Memento-Datetime": format_datetime(_ts_dt(best.timestamp), usegmt=True),
        }
        return best.status, headers, best.body

    def _collinfo(self) -> Answer:
        crawls = [
            {
                "id": cid,
                "name": f"{cid} Index",
                "timegate": f"{self.base}/{cid}/",
                "cdx-api": self.cdx_api.get(cid, f"{self.base}/{cid}-index"),
                "from": start,
                "to": end,
            }
            for cid, (start, end) in sorted(self.crawls.items(), reverse=True)
        ]
        return 200, {"Content-Type": "application/json"}, json.dumps(crawls).encode()

    def _cc_index(self, crawl: str, q: dict[str, str]) -> Answer:
        url = q.get("url", "")
        fault = self._fault("cc_index", url)
        if fault:
            return fault
        entries = [e for e in self.cc_index[crawl] if e.url == url]
        if not entries:
            return 404, {"Content-Type": "application/json"}, b'{"message": "No Captures found"}\n'
        lines = []
        for e in entries:
            row: dict[str, object] = {
                "urlkey": e.url,
                "timestamp": e.timestamp,
                "url": e.url,
                "mime": e.mime,
                "mime-detected": e.mime,
                "status": str(e.status),
                "digest": "-",
                "length": str(e.length),
                "offset": str(e.offset),
                "filename": e.filename,
            }
            row.update(self.cc_rows.get(url, {}))
            lines.append(json.dumps(row))
        return 200, {"Content-Type": "text/x-ndjson"}, ("\n".join(lines) + "\n").encode()

    def _cc_data(self, filename: str, headers: dict[str, str]) -> Answer:
        data = self.cc_files.get(filename)
        if data is None:
            return 404, {"Content-Type": "text/plain"}, b"no such file\n"
        rng = headers.get("range", "")
        if not rng.startswith("bytes="):
            return 200, {"Content-Type": "application/octet-stream"}, bytes(data)
        a, _, b = rng[len("bytes=") :].partition("-")
        start, end = int(a), min(int(b), len(data) - 1)
        entry_url = next(
            (e.url for es in self.cc_index.values() for e in es if e.offset == start), ""
        )
        fault = self._fault("cc_data", entry_url)
        if fault:
            return fault
        chunk = bytes(data[start : end + 1])
        if entry_url in self.truncate:
            chunk = chunk[: len(chunk) // 2]
        return (
            206,
            {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(data)}",
            },
            chunk,
        )


def _handler(fake: FakeArchive) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            status, headers, body = fake.handle(
                self.path, {k.lower(): v for k, v in self.headers.items()}
            )
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serve_archive(fake: FakeArchive, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the fake archive alone on `host`; yields its base URL (also set as fake.base)."""
    server = ThreadingHTTPServer((host, 0), _handler(fake))
    server.daemon_threads = True
    fake.base = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-archive", daemon=True)
    thread.start()
    try:
        yield fake.base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def archive_config(base: str) -> dict[str, str]:
    """crawl.archive endpoint fields pointing at a fake archive."""
    return {
        "wayback_cdx": f"{base}/cdx/search/cdx",
        "wayback_raw": base + "/web/{timestamp}id_/{url}",
        "commoncrawl_collinfo": f"{base}/collinfo.json",
        "commoncrawl_data": f"{base}/data/",
    }
