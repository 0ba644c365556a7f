"""Export the archive: WARC/1.1 for web archive tools, JSON for everything else.

WARC (through warcio), per source, in capture order:

* ``response``: each capture that stored a version with a raw body, with the status
  line and headers as captured. The body is stored decoded, so Content-Encoding and
  Transfer-Encoding are dropped and Content-Length is the stored length.
* ``resource``: a seed article's text (it was imported, not fetched).
* ``revisit``: each unchanged capture, pointing at the response it repeats. A 304 uses
  the ``server-not-modified`` profile and identical bytes ``identical-payload-digest``;
  new bytes with the same extracted text use claimwatch's own profile
  (:data:`SAME_TEXT_PROFILE`), since WARC has none for it.
* ``metadata``: for each version, a JSON document with its extracted text, the
  change that led to it, and its claims flags.

Record ids are derived from the capture ids, so exporting twice gives the same ids.
Failed captures are not web content and appear only in the JSON export.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime
from http import HTTPStatus
from io import BytesIO
from typing import IO, Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archiver import __version__
from store.models import CaptureRecord, FlagFilter, Source, Version
from store.repo import Store

SAME_TEXT_PROFILE = "https://github.com/claimwatch/claimwatch#revisit/identical-text"
NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
IDENTICAL = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
_DROPPED = {"content-encoding", "transfer-encoding", "content-length"}


def _warc_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record_id(*parts: object) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'claimwatch:' + ':'.join(map(str, parts)))}>"


def _payload_digest(body: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


def _http_headers(capture: CaptureRecord, length: int | None) -> StatusAndHeaders:
    status = capture.http_status or 200
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    pairs = [(k, v) for k, v in (capture.headers or {}).items() if k.lower() not in _DROPPED]
    if length is not None:
        pairs.append(("Content-Length", str(length)))
    return StatusAndHeaders(f"{status} {phrase}".strip(), pairs, protocol="HTTP/1.1")


def write_warc(store: Store, sources: Iterable[Source], out: IO[bytes], now: datetime) -> int:
    """Write the sources' histories to ``out`` as gzipped WARC/1.1; returns the record count."""
    writer = WARCWriter(out, gzip=True, warc_version="1.1")
    info = (
        f"software: claimwatch {__version__}\r\nformat: WARC File Format 1.1\r\n"
        "conformsTo: https://iipc.github.io/warc-specifications/specifications/"
        "warc-format/warc-1.1/\r\n"
    ).encode()
    writer.write_record(
        writer.create_warc_record(
            "",
            "warcinfo",
            payload=BytesIO(info),
            length=len(info),
            warc_content_type="application/warc-fields",
            warc_headers_dict={
                "WARC-Record-ID": _record_id("warcinfo", _warc_date(now)),
                "WARC-Date": _warc_date(now),
            },
        )
    )
    count = 1
    for source in sources:
        for record in _source_records(store, source, writer):
            writer.write_record(record)
            count += 1
    return count


class _Notes:
    """A source's changes and flags, read once for its export and attached to versions."""

    def __init__(self, store: Store, source: Source):
        self.store = store
        self.changes = store.changes(source_id=source.id)  # newest first
        self.edit_to = {c.to_version: c for c in self.changes if c.kind in ("edit", "selector")}
        self.flags: dict[int, list[dict[str, Any]]] = {}
        for f in store.flags(FlagFilter(source_id=source.id)):
            row = _plain(f, "source_id", "source_name", "source_url", "title")
            self.flags.setdefault(f.version, []).append(row)

    def version(self, version: Version, text: str | None = None) -> dict[str, Any]:
        """A version as plain data, with its text, the change that led to it and its flags."""
        row = _plain(version, "source_id")
        row["text"] = text if text is not None else self.store.read_text(version)
        change = self.edit_to.get(version.number)
        row["change"] = _plain(change, "source_id", "source_name", "source_url") if change else None
        row["flags"] = self.flags.get(version.number, [])
        return row


def _plain(record: Any, *drop: str) -> dict[str, Any]:
    row = asdict(record)
    for name in drop:
        row.pop(name, None)
    return row


def _block(
    writer: WARCWriter, uri: str, kind: str, payload: bytes, ctype: str, headers: dict[str, str]
) -> Any:
    """A resource or metadata record: a block we made, not an HTTP exchange."""
    return writer.create_warc_record(
        uri,
        kind,
        payload=BytesIO(payload),
        length=len(payload),
        warc_content_type=ctype,
        warc_headers_dict=headers,
    )


def _source_records(store: Store, source: Source, writer: WARCWriter) -> Iterator[Any]:
    by_id = {v.id: v for v in store.versions(source.id)}
    notes = _Notes(store, source)
    # version id -> (record id, uri, date, payload digest) of the record that holds it
    held: dict[int, tuple[str, str, str, str]] = {}
    current: int | None = None
    for capture_id, version_id, capture in store.capture_log(source.id):
        uri = capture.final_url or source.shown_url
        date = _warc_date(capture.started_at)
        rid = _record_id(source.id, "capture", capture_id)
        if capture.outcome == "new_version" and version_id in by_id:
            version = by_id[version_id]
            text = store.read_text(version)
            if version.raw_digest is not None and capture.http_status is not None:
                body = store.read_raw(version)
                yield writer.create_warc_record(
                    uri,
                    "response",
                    payload=BytesIO(body),
                    length=None,
                    http_headers=_http_headers(capture, len(body)),
                    warc_headers_dict={"WARC-Record-ID": rid, "WARC-Date": date},
                )
                held[version.id] = (rid, uri, date, _payload_digest(body))
            else:
                block = text.encode("utf-8")
                headers = {"WARC-Record-ID": rid, "WARC-Date": date}
                yield _block(writer, uri, "resource", block, "text/plain; charset=utf-8", headers)
                held[version.id] = (rid, uri, date, _payload_digest(block))
            current = version.id
            meta = json.dumps(notes.version(version, text), ensure_ascii=False, default=_default)
            headers = {
                "WARC-Record-ID": _record_id(source.id, "version", version.id),
                "WARC-Date": date,
                "WARC-Refers-To": rid,
                "WARC-Concurrent-To": rid,
            }
            yield _block(writer, uri, "metadata", meta.encode("utf-8"), "application/json", headers)
        elif capture.outcome in ("not_modified", "same_bytes", "same_text", "reverted"):
            if capture.outcome == "reverted" and version_id is not None:
                current = version_id
            if current is None or current not in held:
                continue
            ref_id, ref_uri, ref_date, digest = held[current]
            profile = {"not_modified": NOT_MODIFIED, "same_bytes": IDENTICAL}.get(
                capture.outcome, SAME_TEXT_PROFILE
            )
            headers = {
                "WARC-Record-ID": rid,
                "WARC-Date": date,
                "WARC-Profile": profile,
                "WARC-Refers-To": ref_id,
                "WARC-Refers-To-Target-URI": ref_uri,
                "WARC-Refers-To-Date": ref_date,
                "WARC-Payload-Digest": digest,
            }
            http = _http_headers(capture, None) if capture.http_status else None
            yield writer.create_warc_record(
                uri, "revisit", http_headers=http, warc_headers_dict=headers
            )


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def source_history(store: Store, source: Source) -> dict[str, Any]:
    """A source's whole history as plain JSON-able data: the source, every version with
    its text, every capture (failed ones too), every change and every flag."""
    notes = _Notes(store, source)
    versions = [notes.version(v) for v in store.versions(source.id)]
    number_of = {v["id"]: v["number"] for v in versions}
    capture_rows = []
    for capture_id, version_id, capture in store.capture_log(source.id):
        row = asdict(capture)
        row.pop("source_id")
        row["id"], row["version"] = capture_id, number_of.get(version_id)
        capture_rows.append(row)
    return {
        "format": "claimwatch-history/1",
        "source": {**asdict(source), "url": source.shown_url},
        "versions": versions,
        "captures": capture_rows,
        "changes": [_plain(c, "source_id", "source_name") for c in reversed(notes.changes)],
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, default=_default)
