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
from store.models import CaptureRecord, Source, Version
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


def _source_records(store: Store, source: Source, writer: WARCWriter) -> Iterator[Any]:
    by_id = {v.id: v for v in store.versions(source.id)}
    flags_by_version: dict[int, list[dict[str, Any]]] = {}
    for f in store.flags(source_id=source.id):
        flags_by_version.setdefault(f.version, []).append(_flag_json(f))
    change_to = {c.to_version: c for c in store.changes(source_id=source.id) if c.kind == "edit"}
    # version id -> (record id, uri, date, payload digest) of the record that holds it
    held: dict[int, tuple[str, str, str, str]] = {}
    current: int | None = None
    for capture_id, version_id, capture in store.capture_log(source.id):
        uri = capture.final_url or source.url
        date = _warc_date(capture.started_at)
        rid = _record_id(source.id, "capture", capture_id)
        if capture.outcome == "new_version" and version_id in by_id:
            version = by_id[version_id]
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
                text = store.read_text(version).encode("utf-8")
                yield writer.create_warc_record(
                    uri,
                    "resource",
                    payload=BytesIO(text),
                    length=len(text),
                    warc_content_type="text/plain; charset=utf-8",
                    warc_headers_dict={"WARC-Record-ID": rid, "WARC-Date": date},
                )
                held[version.id] = (rid, uri, date, _payload_digest(text))
            current = version.id
            meta = _version_json(store, version, change_to.get(version.number), flags_by_version)
            yield _metadata(writer, source, version, rid, uri, date, meta)
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


def _metadata(
    writer: WARCWriter,
    source: Source,
    version: Version,
    refers_to: str,
    uri: str,
    date: str,
    doc: dict[str, Any],
) -> Any:
    payload = json.dumps(doc, ensure_ascii=False, default=_default).encode("utf-8")
    return writer.create_warc_record(
        uri,
        "metadata",
        payload=BytesIO(payload),
        length=len(payload),
        warc_content_type="application/json",
        warc_headers_dict={
            "WARC-Record-ID": _record_id(source.id, "version", version.id),
            "WARC-Date": date,
            "WARC-Refers-To": refers_to,
            "WARC-Concurrent-To": refers_to,
        },
    )


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _flag_json(flag: Any) -> dict[str, Any]:
    row = asdict(flag)
    for name in ("source_id", "source_name", "source_url", "title"):
        row.pop(name, None)
    return row


def _version_json(
    store: Store, version: Version, change: Any, flags_by_version: dict[int, list[dict[str, Any]]]
) -> dict[str, Any]:
    row = asdict(version)
    row.pop("source_id")
    row["text"] = store.read_text(version)
    row["change"] = _change_json(change) if change is not None else None
    row["flags"] = flags_by_version.get(version.number, [])
    return row


def _change_json(change: Any) -> dict[str, Any]:
    row = asdict(change)
    for name in ("source_id", "source_name"):
        row.pop(name, None)
    return row


def source_history(store: Store, source: Source) -> dict[str, Any]:
    """A source's whole history as plain JSON-able data: the source, every version with
    its text, every capture (failed ones too), every change and every flag."""
    flags_by_version: dict[int, list[dict[str, Any]]] = {}
    for f in store.flags(source_id=source.id):
        flags_by_version.setdefault(f.version, []).append(_flag_json(f))
    change_to = {c.to_version: c for c in store.changes(source_id=source.id) if c.kind == "edit"}
    versions = [
        _version_json(store, v, change_to.get(v.number), flags_by_version)
        for v in store.versions(source.id)
    ]
    number_of = {v["id"]: v["number"] for v in versions}
    capture_rows = []
    for capture_id, version_id, capture in store.capture_log(source.id):
        row = asdict(capture)
        row.pop("source_id")
        row["id"], row["version"] = capture_id, number_of.get(version_id)
        capture_rows.append(row)
    return {
        "format": "claimwatch-history/1",
        "source": asdict(source),
        "versions": versions,
        "captures": capture_rows,
        "changes": [_change_json(c) for c in reversed(store.changes(source_id=source.id))],
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, default=_default)
