"""Real PDF files for tests, written here: PDF 1.4 with the standard Helvetica font,
each paragraph's words wrapped into lines as a word processor's export draws them
(no blank line between paragraphs, a page number at each page's foot)."""

from __future__ import annotations

import textwrap
import zlib


def pdf_document(
    pages: list[list[str]],
    title: str | None = None,
    width: int = 80,
    numbered: bool = True,
    padding: int = 0,
) -> bytes:
    """A PDF whose pages draw these paragraphs, wrapped at ``width`` characters
    (Latin-1 text: the standard font's encoding). ``padding``: that many spaces after
    each page's drawing, the stream compressed (a decompression bomb, if large)."""
    objects: list[bytes] = []
    kids = []
    for n, paragraphs in enumerate(pages, start=1):
        ops = ["BT", "/F1 10 Tf", "13 TL", "56 740 Td"]
        for paragraph in paragraphs:
            for line in textwrap.wrap(paragraph, width) or [""]:
                ops.append(f"({_escape(line)}) Tj T*")
            ops.append("0 -6 Td")  # the space a paragraph leaves after it
        ops.append("ET")
        if numbered:
            ops += ["BT", "/F1 9 Tf", "300 30 Td", f"({n}) Tj", "ET"]
        stream = "\n".join(ops).encode("latin-1")
        content = len(objects) + 5  # objects 1-3 are fixed; 4 is the info dictionary
        flate = b""
        if padding:
            stream, flate = zlib.compress(stream + b" " * padding, 9), b" /Filter /FlateDecode"
        objects.append(b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(stream), flate, stream))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content
        )
        kids.append(content + 1)
    fixed = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % k for k in kids), len(kids)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Title (%s) >>" % _escape(title or "").encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate([*fixed, *objects], start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    info = b" /Info 4 0 R" if title else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(offsets) + 1,
        info,
        xref,
    )
    return bytes(out)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
