"""Sources published as PDF: their text is archived as paragraphs, a PDF laid out anew
is no edit, and a PDF that cannot be read is that check's failure, said plainly."""

from __future__ import annotations

import io

import httpx
import pytest
from pypdf import PdfReader, PdfWriter
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from archiver.text.extract import extract
from archiver.text.pdf import Line, paragraphs, pdf_text
from store.errors import EmptyExtraction, ExtractionError
from store.models import SourceSpec, Version
from store.repo import Store
from tests.support import NOW
from tests.support.pdfs import pdf_document
from tests.support.pipeline import run, serve
from tests.support.web import Served

# Written for these tests: the terms of an imagined model licence.
TERMS = [
    "Community licence for the Harbour 3 models",
    "The licensor grants you a non-exclusive, worldwide and royalty-free right to use, "
    "copy, modify and distribute the model weights, subject to the conditions below.",
    "A licensee whose products served more than 700 million monthly active users in the "
    "calendar month before the release date must ask the licensor for a separate licence.",
    "1. Every copy you distribute must carry this licence and the attribution notice.",
    "2. A product built on the models must say so where its users can read it.",
    "The licensor may change these terms for later models, which it is not obliged to "
    "release under them.",
]


def drawn(page: str) -> list[Line]:
    """A page's lines as a PDF places them, 13 points apart: an empty line stands for
    6 points more space, and a leading ">" for a first line indented by 12 points."""
    lines, y = [], 740.0
    for text in page.split("\n"):
        if not text:
            y -= 6
            continue
        indent = 12.0 if text.startswith(">") else 0.0
        lines.append(Line(y, 56 + indent, text.lstrip(">")))
        y -= 13
    return lines


@pytest.mark.parametrize(
    ("pages", "expected"),
    [
        # Lines of a wrapped paragraph are one paragraph; its short last line ends it.
        (
            ["A long first line of a paragraph that fills the page width nearly\n"
             "and its second line, which also runs close to the right margin too,\n"
             "ends short.\nNext paragraph, a single line of moderate length here."],
            ["A long first line of a paragraph that fills the page width nearly and its "
             "second line, which also runs close to the right margin too, ends short.",
             "Next paragraph, a single line of moderate length here."],
        ),
        # Full lines parted by more space than the page's line spacing: two paragraphs.
        (
            ["A paragraph of two lines, whose first line reaches the right margin\n"
             "and whose second line, full too, ends it with a full stop at the end.\n\n"
             "Another paragraph of one line, which also reaches the right margin."],
            ["A paragraph of two lines, whose first line reaches the right margin and whose "
             "second line, full too, ends it with a full stop at the end.",
             "Another paragraph of one line, which also reaches the right margin."],
        ),
        # No space between them, but the second paragraph's first line is indented.
        (
            ["A paragraph of one line that runs all the way to the right margin.\n"
             ">Another paragraph, indented, which goes on past the end of this\n"
             "line into a second one that is nearly as long as the first lines."],
            ["A paragraph of one line that runs all the way to the right margin.",
             "Another paragraph, indented, which goes on past the end of this line into a "
             "second one that is nearly as long as the first lines."],
        ),
        # A word split across lines is joined; a page number is page furniture.
        (
            ["The licence covers the distri-\nbution of weights in every country that\n"
             "the licensee reaches with its products.\n12"],
            ["The licence covers the distribution of weights in every country that the "
             "licensee reaches with its products."],
        ),
        # A paragraph runs on across a page break; "Page 2 of 3" goes; list items part.
        (
            ["A paragraph that starts at the foot of one page and keeps on going\n"
             "Page 1 of 3",
             "until the next page, where it ends.\n1. First item of the list.\n"
             "2. Second item of the list."],
            ["A paragraph that starts at the foot of one page and keeps on going until the "
             "next page, where it ends.", "1. First item of the list.",
             "2. Second item of the list."],
        ),
        # A heading (a short line without a full stop) is its own paragraph.
        (
            ["Conditions\nThe licensee must keep every notice that the licensor puts in\n"
             "the files it distributes with the model."],
            ["Conditions", "The licensee must keep every notice that the licensor puts in "
             "the files it distributes with the model."],
        ),
        # A line short only because the next word was too long for it goes on.
        (
            ["Every copy must keep the notice, and the files must be loaded from the\n"
             "directory the configuration names at\n"
             "HARBOUR_MODELS_HOME/licences/notice.txt, before any other file is read."],
            ["Every copy must keep the notice, and the files must be loaded from the "
             "directory the configuration names at "
             "HARBOUR_MODELS_HOME/licences/notice.txt, before any other file is read."],
        ),
        # A running head (the same line at the same place on each page) is not text.
        (
            ["Harbour licence, draft\nThe first page's paragraph runs over two lines and\n"
             "then goes on over the page break without a stop",
             "Harbour licence, draft\nand ends on the second page, after the running head."],
            ["The first page's paragraph runs over two lines and then goes on over the page "
             "break without a stop and ends on the second page, after the running head."],
        ),
        # Chinese lines join with no space.
        (["许可证允许用户在全球范围内免费使用\n和分发模型权重。"], ["许可证允许用户在全球范围内免费使用和分发模型权重。"]),
    ],
)  # fmt: skip
def test_lines_are_joined_back_into_paragraphs(pages: list[str], expected: list[str]) -> None:
    assert paragraphs([drawn(page) for page in pages]) == expected


def test_a_pdf_laid_out_anew_reads_as_the_same_text() -> None:
    """Narrower lines, another page break: the words are the same, so is the text."""
    narrow = pdf_document([TERMS[:3], TERMS[3:]], title="Harbour 3 licence", width=62)
    wide = pdf_document([TERMS], title="Harbour 3 licence", width=95, numbered=False)
    read = pdf_text(narrow)
    assert read.text.split("\n") == TERMS
    assert (read.title, read.pages) == ("Harbour 3 licence", 2)
    assert pdf_text(wide).text == read.text
    extracted = extract(narrow, "application/pdf")
    assert (extracted.text, extracted.title) == (read.text, "Harbour 3 licence")


def _encrypted(body: bytes, password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(body)))
    writer.encrypt(password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_unreadable_pdfs_are_one_clear_failure() -> None:
    good = pdf_document([TERMS])
    with pytest.raises(ExtractionError, match=r"^the PDF cannot be read \("):
        pdf_text(b"%PDF-1.4\nthis is not a PDF body at all\n%%EOF\n")
    with pytest.raises(ExtractionError, match=r"^the PDF cannot be read \("):
        pdf_text(good[: len(good) // 2])  # cut off: no cross-reference table, no trailer
    with pytest.raises(ExtractionError, match="encrypted with a password"):
        pdf_text(_encrypted(good, "secret"))
    assert pdf_text(_encrypted(good, "")).text.split("\n") == TERMS  # opens without one
    # A page whose drawing inflates past pypdf's 75 MB limit for one stream.
    with pytest.raises(ExtractionError, match=r"^the PDF cannot be read \(LimitReachedError"):
        pdf_text(pdf_document([TERMS], padding=80_000_000))
    assert pdf_text(pdf_document([TERMS], padding=1000)).text.split("\n") == TERMS
    with pytest.raises(EmptyExtraction, match="the PDF has no text"):
        pdf_text(pdf_document([[""]], numbered=False))


class Document:
    """A PDF the test replaces between checks, sent as ``content_type``."""

    def __init__(self, body: bytes, content_type: str = "application/pdf"):
        self.body, self.content_type = body, content_type

    def __call__(self, request: Request) -> Response:
        return Response(self.body, content_type=self.content_type)


def archived(
    store: Store, httpserver: HTTPServer, path: str, document: Document, label: str
) -> Version:
    """Serve ``document`` at ``path``, watch it as ``label`` and check it: its first
    version."""
    store.add_source(SourceSpec(url=serve(httpserver, path, document), label=label), NOW)
    first = run(store, label)
    assert (first.outcome, first.version) == ("new_version", 1), first.error
    [v1] = store.versions(store.get_source(label).id)
    return v1


def test_a_pdf_source_is_archived_and_diffed_by_its_text(
    store: Store, httpserver: HTTPServer
) -> None:
    """A licence published as a PDF was refused as an unsupported content type. Its
    text is archived; the same licence laid out anew is the same text, not an edit; a
    changed condition is a change of that sentence alone."""
    document = Document(pdf_document([TERMS], title="Harbour 3 licence"))
    v1 = archived(store, httpserver, "/licence.pdf", document, "lic")
    assert (v1.title, v1.content_type) == ("Harbour 3 licence", "application/pdf")
    assert store.read_text(v1).split("\n") == TERMS
    assert store.read_raw(v1) == document.body

    document.body = pdf_document([TERMS[:2], TERMS[2:]], title="Harbour 3 licence", width=70)
    assert run(store, "lic", 1).outcome == "same_text"

    changed = [*TERMS[:2], TERMS[2].replace("700 million", "500 million"), *TERMS[3:]]
    document.body = pdf_document([changed], title="Harbour 3 licence")
    third = run(store, "lic", 2)
    assert (third.outcome, third.version) == ("new_version", 2)
    [change] = store.changes(source_id=store.get_source("lic").id)
    assert change.summary == "sentences 1 modified"

    document.body = b"%PDF-1.7\n" + b"\x00" * 4000
    broken = run(store, "lic", 3)
    assert broken.outcome == "failed" and broken.error_class == "ExtractionError"
    assert (broken.error or "").startswith("the PDF cannot be read")


@pytest.mark.parametrize("sent_as", ["application/octet-stream", "application/x-pdf"])
def test_a_pdf_sent_as_bytes_or_by_its_alias_is_read_as_a_pdf(
    store: Store, httpserver: HTTPServer, sent_as: str
) -> None:
    """Many servers send PDFs as application/octet-stream: that was an unsupported
    content type. Its first bytes say it is a PDF; anything else sent so is refused,
    saying what claimwatch reads."""
    document = Document(pdf_document([TERMS], title="Harbour 3 licence"), sent_as)
    v1 = archived(store, httpserver, "/download", document, "d")
    assert (v1.content_type, v1.title) == ("application/pdf", "Harbour 3 licence")
    assert store.read_text(v1).split("\n") == TERMS
    if sent_as == "application/octet-stream":
        document.body = b"PK\x03\x04" + b"\x00" * 2000  # a zip file
        refused = run(store, "d", 1)
        assert (refused.outcome, refused.error_class) == ("failed", "UnsupportedContentType")
        assert (refused.error or "").endswith(
            "is application/octet-stream and its body is not a PDF; claimwatch reads "
            "HTML, plain text and PDF"
        )


def test_a_selector_on_a_pdf_says_to_take_it_off(store: Store, httpserver: HTTPServer) -> None:
    url = serve(httpserver, "/l.pdf", Document(pdf_document([TERMS])))
    spec = SourceSpec(url=url, label="l", select="article")
    store.add_source(spec, NOW)
    result = run(store, "l")
    assert (result.outcome, result.error_class) == ("failed", "SelectorMatchedNothing")
    assert "this one is a PDF" in (result.error or "")


@pytest.mark.e2e
def test_the_web_view_offers_a_pdf_version_as_a_download(
    store: Store, httpserver: HTTPServer
) -> None:
    """Its bytes shown as text were noise, and the sandboxed frame showed the same."""
    from archiver.web import WebOptions

    body = pdf_document([TERMS])
    archived(store, httpserver, "/l.pdf", Document(body), "l")
    source = store.get_source("l")
    served = Served(store, WebOptions())
    try:
        page = httpx.get(f"{served.url}/sources/{source.id}/versions/1/raw")
        raw = httpx.get(f"{served.url}/raw/{source.id}/1")
    finally:
        served.stop()
    assert page.status_code == 200 and "This version is a PDF of" in page.text
    assert "%PDF" not in page.text
    assert raw.content == body
    assert raw.headers["content-type"] == "application/pdf"
    assert raw.headers["content-disposition"] == f'attachment; filename="{source.id}-v1.pdf"'
