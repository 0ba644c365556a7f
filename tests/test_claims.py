"""The claims file, the matcher, and its evaluation targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archiver.app.claimsfile import load_claims
from archiver.claims.rules import MatchOptions, claim_from_dict, claim_to_dict, match
from store.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "claims"
CLAIMS = load_claims(ROOT / "seeds" / "claims.yaml")
E = "meta-ends-open-releases"


def test_shipped_claims_cover_the_column() -> None:
    ids = {c.id for c in CLAIMS}
    assert len(CLAIMS) == 10
    assert {
        E,
        "capex-65b-wall-street",
        "open-source-in-name-only",
        "open-models-misuse",
        "wang-hire-talent-war",
        "openai-simo-ads",
        "whatsapp-long-game",
    } <= ids
    for c in CLAIMS:
        langs = dict(c.statements)
        assert langs["en"] and (c.actors or c.objects) and c.supports
        assert any("\u0600" <= ch <= "\u06ff" for ch in langs["ar"])


def test_claims_round_trip_through_plain_data() -> None:
    for c in CLAIMS:
        assert claim_from_dict(json.loads(json.dumps(claim_to_dict(c)))) == c


GOOD = """entities:
  Meta: [Meta, ميتا]
claims:
  - id: c1
    en: Meta will close its models.
    ar: ستغلق ميتا نماذجها.
    actors: [Meta]
"""


@pytest.mark.parametrize(
    "text,line,field,message",
    [
        (GOOD.replace("actors: [Meta]", "actors: [Metta]"), 4, "actors", "unknown entity 'Metta'"),
        (
            GOOD.replace("    en: Meta will close its models.\n    ar: ستغلق ميتا نماذجها.\n", ""),
            4,
            "statements",
            "needs at least one statement",
        ),
        (GOOD.replace("    ar: ستغلق ميتا نماذجها.", "    ar: ''"), 4, "ar", "needs a text"),
        (
            GOOD.replace("    en: Meta will close its models.", "    statements: {english: x}"),
            4,
            "statements",
            "not a language code",
        ),
        (
            GOOD.replace("    en: Meta will close its models.", "    statement: {en: x}"),
            4,
            "statement",
            "is one text; for texts by language write 'statements:",
        ),
        (GOOD.replace("id: c1", "id: Claim One"), 4, "id", "needs an id"),
        (
            GOOD.replace("    actors: [Meta]\n", "    actors: [Meta]\n    colour: red\n"),
            4,
            "colour",
            "unknown field",
        ),
        (
            GOOD.replace("    actors: [Meta]\n", "    actors: [Meta]\n    supports: closed\n"),
            4,
            "supports",
            "must be a list",
        ),
        (GOOD + "  - id: c1\n    en: x\n    ar: y\n    actors: [Meta]\n", 8, "id", "used twice"),
        (
            GOOD.replace(
                "  Meta: [Meta, ميتا]", "  Meta: {aliases: [Meta], case_sensitive: maybe}"
            ),
            2,
            "entities.Meta.case_sensitive",
            "true or false",
        ),
    ],
)
def test_bad_claims_file_names_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_claims(path)
    assert (info.value.line, info.value.field) == (line, field)
    assert str(info.value).startswith(f"{path}:{line}: field '{field}':")


def test_malformed_claims_yaml(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text("claims:\n  - id: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_claims(path)


def _flags(text: str) -> dict[str, str]:
    return {f.claim: f.stance for f in match(text, CLAIMS)}


def test_negation_flips_the_stance() -> None:
    assert _flags("Meta said it will keep its most powerful model closed.")[E] == "supports"
    assert _flags("Meta said it will not keep its most powerful model closed.")[E] == "contradicts"
    assert (
        _flags("Meta said it will stop releasing the weights of its Llama models.")[E] == "supports"
    )


def test_a_negated_cue_flips_only_itself() -> None:
    # The same cue twice, negated once: one occurrence on each side, not two against.
    from archiver.claims.rules import compile_claims, evidence, parse

    [claim] = [c for c in compile_claims(tuple(CLAIMS)) if c.claim.id == E]
    text = (
        "Meta said it will not keep its most powerful model closed. "
        "A year later Meta said it will keep its most powerful model closed."
    )
    ev = evidence(claim, parse(text), MatchOptions())
    assert ev.side_weight["supports"] == pytest.approx(ev.side_weight["contradicts"])
    assert ev.side_weight["supports"] > 0
    assert ev.cue_sentence == {"contradicts": 0, "supports": 1}


def test_names_are_not_animals_or_tools() -> None:
    assert _flags("Llamas are stubborn animals that will not stop spitting.") == {}
    assert _flags("Run open models locally with llama.cpp; Meta is not involved.") == {}


def test_arabic_with_attached_particles() -> None:
    flags = _flags("وقالت ميتا إنها لن تطلق نموذجها القادم، وستبقيه مغلقًا.")
    assert flags[E] == "supports"


def test_every_flag_explains_itself() -> None:
    [flag] = [
        f
        for f in match("Meta will keep its next frontier model closed, it said.", CLAIMS)
        if f.claim == E
    ]
    assert flag.evidence == "Meta will keep its next frontier model closed, it said."
    assert any(r.startswith("actors: Meta") for r in flag.reasons)
    assert any("cue" in r for r in flag.reasons)
    assert 0 < flag.score <= 1


def test_a_phrase_is_looked_for_only_where_its_words_are() -> None:
    # The vocabulary shortcuts (a claim's phrases indexed by their first word, a
    # sentence's set of keys) must find exactly what scanning every sentence finds:
    # every alias, term and cue of the seed story, in real passages of six languages.
    from archiver.claims.rules import _find, compile_claims, parse

    rows = [json.loads(line) for line in (ROOT / "seeds/corpus/train.jsonl").open()][::6]
    assert len({r["lang"] for r in rows}) >= 6
    compiled = compile_claims(tuple(CLAIMS))
    found = 0
    for row in rows:
        sents = parse(row["text"])
        vocab = frozenset().union(*(s.vocab for s in sents))
        for c in compiled:
            present = c.present(vocab)
            groups = [(ps, exact) for _n, ps, exact in (*c.actors, *c.objects)]
            groups += [((p,), False) for _t, p, _x in (*c.terms, *c.cues)]
            for phrases, exact in groups:
                for p in phrases:
                    for s in sents:
                        scanned = _find(p, s.exact if exact else s.keyed, 3)
                        assert s.spans(p, exact, 3) == scanned, (p, s.text)
                        if scanned:
                            assert p in present, (p, s.text)
                            found += 1
    assert found > 200  # the comparison saw many real hits, not only misses


def test_golden_flags(golden) -> None:  # type: ignore[no-untyped-def]
    out = []
    for line in (DATA / "golden" / "passages.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        found = [
            {
                "claim": f.claim,
                "stance": f.stance,
                "score": f.score,
                "evidence": f.evidence,
                "reasons": list(f.reasons),
            }
            for f in match(item["text"], CLAIMS)
        ]
        out.append({"id": item["id"], "flags": found})
    by_id = {o["id"]: {f["claim"]: f["stance"] for f in o["flags"]} for o in out}
    assert by_id["closed-en"][E] == "supports" and by_id["open-en"][E] == "contradicts"
    assert by_id["negated-cue"][E] == "contradicts"
    assert by_id["capex-ar"]["capex-65b-wall-street"] == "supports"
    assert by_id["licence-en"]["open-source-in-name-only"] == "supports"
    assert by_id["misuse-ar"]["open-models-misuse"] == "supports"
    assert by_id["animal"] == by_id["llama-cpp"] == by_id["other-company"] == {}
    golden(DATA / "golden" / "flags.json", json.dumps(out, ensure_ascii=False, indent=1) + "\n")


def _evaluate(path: Path, options: MatchOptions) -> tuple[float, float]:
    """Bears-on F1 and stance accuracy of the rule matcher, as ``claims eval`` counts them."""
    from archiver.claims.labelled import evaluate, read_labelled
    from archiver.claims.matcher import Matcher

    report = evaluate(read_labelled(path, CLAIMS), CLAIMS, Matcher(options))
    return report.to_dict()["overall"]["f1"], report.stance_accuracy()


def test_eval_intervals_draw_whole_pages_and_are_reproducible() -> None:
    from archiver.claims.labelled import Counts, Report, evaluate, read_labelled
    from archiver.claims.matcher import Matcher

    rows = read_labelled(DATA / "dev.jsonl", CLAIMS)
    report = evaluate(rows, CLAIMS, Matcher())  # the rule matcher: no model needed
    ci = report.intervals()
    assert ci == report.intervals()  # the same report and seed: the same intervals
    assert ci["method"].startswith(f"bootstrap over {len({r.group for r in rows})} pages")
    point = report.to_dict()
    for name in ("precision", "recall", "f1"):
        low, high = ci[name]
        assert low < point["overall"][name] < high, (name, ci[name])
    assert ci != report.intervals(seed=1)
    # Pages that all score the same leave nothing to vary: the interval is the point.
    same = Report(by_page={f"p{n}": Counts(3, 1, 1) for n in range(20)})
    same.right_by_page.update({f"p{n}": 2 for n in range(20)})
    fixed = same.intervals()
    assert fixed["f1"] == [0.75, 0.75] and fixed["stance_accuracy"] == [0.667, 0.667]
    assert Report(by_page={"one": Counts(1, 0, 0)}).intervals() == {}  # one page: no spread


def test_development_set_targets_with_the_lexical_matcher() -> None:
    rows = (DATA / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) >= 150
    assert sum('"lang": "ar"' in r for r in rows) >= 40
    f1, stance = _evaluate(DATA / "dev.jsonl", MatchOptions())
    assert f1 >= 0.85, f"bears-on-claim F1 {f1:.2f}"
    assert stance >= 0.8, f"stance accuracy {stance:.2f}"


def test_a_claim_needs_only_a_statement_in_any_language(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(
        "claims:\n  - id: plug\n    statements: {de: Der Türstopfen hatte keine Bolzen.}\n"
        "  - id: one\n    statement: A single statement, language not given.\n",
        encoding="utf-8",
    )
    plug, one = load_claims(path)
    assert plug.statements == (("de", "Der Türstopfen hatte keine Bolzen."),)
    assert one.statements[0][0] == "und" and not (one.actors or one.terms or one.supports)
    assert claim_from_dict(json.loads(json.dumps(claim_to_dict(plug)))) == plug


def test_claims_stored_before_statements_still_load() -> None:
    old = {"id": "c", "en": "Meta will close its models.", "ar": "ستغلق ميتا نماذجها."}
    assert claim_from_dict(old).statements == (("en", old["en"]), ("ar", old["ar"]))
