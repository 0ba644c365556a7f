"""Per-claim probes (archiver/claims/probes.py): what they learn, when a claim gets none,
and that in training a passage is never scored by a probe that learned from its page."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from archiver.claims.bank import Bank, Example
from archiver.claims.features import BEARS_FEATURES, STANCE_FEATURES, describe
from archiver.claims.matcher import match
from archiver.claims.probes import FOLDS, MIN_POSITIVES, fit_probes, fold_of
from archiver.claims.rules import Claim, MatchOptions
from archiver.claims.semantic import E5Embedder

DIM = 384


def _cloud(rng: np.random.Generator, centre: np.ndarray, n: int) -> np.ndarray:
    x = centre + 0.8 * rng.standard_normal((n, DIM)) / np.sqrt(DIM)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _direction(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM)
    return v / np.linalg.norm(v)


def test_a_probe_tells_a_claims_texts_from_the_rest() -> None:
    rng = np.random.default_rng(1)
    a, b, miss = _direction(10), _direction(11), _direction(12)
    vectors = np.vstack([_cloud(rng, a, 30), _cloud(rng, b, 30), _cloud(rng, miss, 40)])
    labels = [{"a": "supports"}] * 30 + [{"b": "contradicts"}] * 30 + [{}] * 40
    probes = fit_probes(vectors, labels)
    assert set(probes.bears) == {"a", "b"}
    fresh_a, fresh_miss = _cloud(rng, a, 20), _cloud(rng, miss, 20)
    a_probe, b_probe = probes.bears["a"], probes.bears["b"]
    assert a_probe.scores(fresh_a).min() > a_probe.scores(fresh_miss).max()
    # A score is about the share of nearby examples with the claim: above the claim's
    # share of all the examples (0.3) near its own, below it near another claim's.
    assert a_probe.bias == b_probe.bias == pytest.approx(0.3)
    assert b_probe.scores(fresh_a).max() < 0.3 < a_probe.scores(fresh_a).min()
    assert (probes.bear_scores(fresh_a)["a"] == a_probe.scores(fresh_a)).all()


def test_few_examples_get_no_probe_and_a_stance_needs_both_sides() -> None:
    rng = np.random.default_rng(2)
    a, rare, miss = _direction(20), _direction(21), _direction(22)
    n = MIN_POSITIVES - 1
    vectors = np.vstack([_cloud(rng, a, 30), _cloud(rng, rare, n), _cloud(rng, miss, 30)])
    labels = (
        [{"a": "supports"}] * 20 + [{"a": "mentions"}] * 10 + [{"rare": "supports"}] * n + [{}] * 30
    )
    probes = fit_probes(vectors, labels)
    assert "rare" not in probes.bears and "a" in probes.bears
    # 20 supports and 10 mentions against each other; no contradicts at all.
    assert set(probes.stance) == {("a", "supports"), ("a", "mentions")}
    assert fit_probes(vectors[:MIN_POSITIVES], labels[:MIN_POSITIVES]).bears == {}


def test_a_stance_probe_reads_the_side_within_a_claim() -> None:
    rng = np.random.default_rng(3)
    topic, yes, no = _direction(30), _direction(31), _direction(32)
    pro = _cloud(rng, topic + 0.6 * yes, 25)
    con = _cloud(rng, topic + 0.6 * no, 25)
    vectors = np.vstack([pro, con, _cloud(rng, _direction(33), 30)])
    labels = [{"c": "supports"}] * 25 + [{"c": "contradicts"}] * 25 + [{}] * 30
    probes = fit_probes(vectors, labels)
    supports = probes.stance[("c", "supports")]
    new_pro, new_con = _cloud(rng, topic + 0.6 * yes, 10), _cloud(rng, topic + 0.6 * no, 10)
    assert supports.logits(new_pro).mean() > supports.logits(new_con).mean() + 1.0


def test_folds_are_fixed_and_cover_every_fold() -> None:
    pages = [f"https://example.org/page/{n}" for n in range(500)]
    first = [fold_of(p) for p in pages]
    assert first == [fold_of(p) for p in pages]
    assert set(first) == set(range(FOLDS))
    # Not Python's salted hash: the same on every run and machine.
    expected = int.from_bytes(hashlib.sha256(pages[0].encode()).digest()[:4], "big") % FOLDS
    assert first[0] == expected


class _Topics:
    """A stand-in for the sentence model: texts that start with a topic word get a vector
    near that topic's direction (the real e5 model is exercised in test_matcher)."""

    name = "topics"

    def embed(self, texts: Sequence[str], passage: bool = False) -> np.ndarray:
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "big")
            noise = np.random.default_rng(seed).standard_normal(DIM)
            v = _direction(sum(map(ord, t.split()[0]))) + 0.2 * noise / np.linalg.norm(noise)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, np.float32)


def _bank(pages_of_x: list[str]) -> Bank:
    examples = [Example("x", "supports", f"xray item {n}.", p) for n, p in enumerate(pages_of_x)]
    examples += [Example("y", "supports", f"yacht item {n}.", f"y{n}") for n in range(12)]
    examples += [Example(None, None, f"zebra item {n}.", f"z{n}") for n in range(12)]
    return Bank(tuple(examples))


def test_training_never_scores_a_page_with_a_probe_that_learned_from_its_fold() -> None:
    page = "https://example.org/only-page"
    same_fold = [
        p for p in (f"https://example.org/{n}" for n in range(400)) if fold_of(p) == fold_of(page)
    ]
    bank = _bank([page, *same_fold[: MIN_POSITIVES + 2]])
    topics = _Topics()
    assert "x" in bank.probes(topics).bears  # at run time: every example
    assert "x" not in bank.probes(topics, exclude=page).bears  # all of x sits in that fold
    assert "y" in bank.probes(topics, exclude=page).bears


def test_the_probe_features_reach_the_model() -> None:
    topics = _Topics()
    claims = [Claim("x", (("en", "xray statement."),)), Claim("y", (("en", "yacht statement."),))]
    bank = _bank([f"x{n}" for n in range(12)])
    _texts, pairs = describe("xray news today.", claims, topics, MatchOptions(), bank)
    at = BEARS_FEATURES.index("probe")
    lead = BEARS_FEATURES.index("probe_lead")
    by = {p.claim.id: p for p in pairs}
    assert by["x"].bears[at] > 0.9 and by["y"].bears[at] < 0.1
    assert by["x"].bears[lead] > 0
    assert any(r.startswith("learned from the claim's examples") for r in by["x"].reasons)
    assert next(r for r in by["x"].reasons if r.startswith("learned")).endswith(", the top claim")
    assert next(r for r in by["y"].reasons if r.startswith("learned")).endswith(
        "behind the top claim"
    )
    stance_at = STANCE_FEATURES.index("probe_supports")
    assert by["x"].stance[stance_at] == 0.0  # only supports examples: no stance probe
    _texts, bare = describe("xray news today.", claims, topics, MatchOptions())
    assert all(p.bears[at] == 0.0 for p in bare)  # no examples, no probe
    assert not any("learned from" in r for p in bare for r in p.reasons)


def test_the_model_reads_how_many_examples_a_claim_has() -> None:
    topics = _Topics()
    claims = [Claim("x", (("en", "xray statement."),)), Claim("y", (("en", "yacht statement."),))]
    at = BEARS_FEATURES.index("ex_count")
    few = _bank([f"x{n}" for n in range(2)])
    many = _bank([f"x{n}" for n in range(12)])
    counts = {}
    for name, bank in (("few", few), ("many", many)):
        _texts, pairs = describe("xray news today.", claims, topics, MatchOptions(), bank)
        counts[name] = {p.claim.id: p.bears[at] for p in pairs}
    assert counts["few"]["x"] == pytest.approx(np.log1p(2))
    assert counts["many"]["x"] == pytest.approx(np.log1p(12))
    assert counts["few"]["y"] == counts["many"]["y"] == pytest.approx(np.log1p(12))
    _texts, bare = describe("xray news today.", claims, topics, MatchOptions())
    assert all(p.bears[at] == 0.0 for p in bare)


def test_sparse_banks_hold_a_few_examples_a_claim_from_other_folds() -> None:
    from archiver.claims.training import SPARSE_MAX, sparse_banks

    pages = [f"https://example.org/{n}" for n in range(300)]
    examples = [Example("x", "supports", f"x {n}.", p) for n, p in enumerate(pages[:100])]
    examples += [Example("y", "mentions", f"y {n}.", p) for n, p in enumerate(pages[100:200])]
    examples += [Example(None, None, f"z {n}.", p) for n, p in enumerate(pages[200:])]
    bank = Bank(tuple(examples))
    banks = sparse_banks(bank, seed=7)
    assert len(banks) == FOLDS
    assert [b.examples for b in banks] == [b.examples for b in sparse_banks(bank, seed=7)]
    assert [b.examples for b in banks] != [b.examples for b in sparse_banks(bank, seed=8)]
    sizes = set()
    for fold, sparse in enumerate(banks):
        assert all(fold_of(e.group) != fold for e in sparse.examples)  # never its own fold
        per_claim = {c: sum(e.claim == c for e in sparse.examples) for c in ("x", "y")}
        assert all(1 <= n <= SPARSE_MAX for n in per_claim.values())
        misses = sum(e.claim is None for e in sparse.examples)
        assert misses <= sum(per_claim.values())
        sizes |= set(per_claim.values())
    assert len(sizes) > 3  # claims get different numbers of examples across folds


def test_probes_survive_their_bytes_exactly() -> None:
    from archiver.claims.probes import probes_from_bytes, probes_to_bytes

    rng = np.random.default_rng(5)
    a, miss = _direction(50), _direction(51)
    vectors = np.vstack([_cloud(rng, a, 20), _cloud(rng, miss, 20)])
    labels = [{"a": "supports"}] * 12 + [{"a": "contradicts"}] * 8 + [{}] * 20
    probes = fit_probes(vectors, labels)
    back = probes_from_bytes(probes_to_bytes(probes))
    assert set(back.bears) == {"a"} and set(back.stance) == set(probes.stance)
    for k, p in probes.bears.items():
        assert np.array_equal(back.bears[k].scores(vectors), p.scores(vectors))
    assert back.bear_scores(vectors).keys() == probes.bear_scores(vectors).keys()
    for side, q in probes.stance.items():
        assert np.array_equal(back.stance[side].logits(vectors), q.logits(vectors))
    empty = probes_from_bytes(probes_to_bytes(fit_probes(vectors[:3], labels[:3])))
    assert empty.bears == {} and empty.stance == {}


def test_the_probes_key_follows_everything_they_are_fitted_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from archiver.claims import probes as probes_

    bank = Bank((Example("a", "supports", "One."), Example(None, None, "Two.")))
    key = bank.probes_key("e5")
    assert key == Bank(bank.examples).probes_key("e5")  # the same inputs: the same key
    assert key != bank.probes_key("another-embedder")
    assert key != Bank((*bank.examples, Example("a", "mentions", "Three."))).probes_key("e5")
    assert key != Bank((Example("a", "contradicts", "One."), bank.examples[1])).probes_key("e5")
    # Probes cached with other settings (an older claimwatch's) are fitted again.
    for name, value in (("GAMMA", 5.0), ("LAMBDA", 1.0), ("MAX_SUPPORT", 100), ("L2_STANCE", 3.0)):
        with monkeypatch.context() as m:
            m.setattr(probes_, name, value)
            assert bank.probes_key("e5") != key, name
    assert bank.probes_key("e5") == key


LIBRARY = [
    *(
        ("library-closes", "supports", f"The council voted to close the library, report {n}.")
        for n in range(6)
    ),
    *((None, None, f"The new park by the river opened to crowds, report {n}.") for n in range(6)),
]


def test_a_run_fits_the_probes_once_and_later_runs_and_workers_reuse_them(  # type: ignore[no-untyped-def]
    sqlite_store, tmp_path, monkeypatch
) -> None:
    """The main process fits the story's probes once and keeps them in the store; the
    workers' bank file carries them, so no worker and no later run fits them again."""
    from datetime import UTC, datetime

    import archiver.claims.bank as bank_module
    from archiver.app.story import prepare_matching
    from archiver.claims.matcher import make_matcher

    now = datetime(2026, 11, 30, tzinfo=UTC)
    sqlite_store.load_examples(LIBRARY, now)
    claims = (Claim("library-closes", (("en", "The library will close."),)),)
    fitted: list[int] = []
    real_fit = bank_module.fit_probes

    def counting_fit(*args, **kwargs):  # type: ignore[no-untyped-def]
        fitted.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(bank_module, "fit_probes", counting_fit)
    first = prepare_matching(sqlite_store, claims, None, tmp_path, now)
    assert fitted == [1]
    (tmp_path / "again").mkdir()
    second = prepare_matching(sqlite_store, claims, None, tmp_path / "again", now)
    assert fitted == [1]  # the store's copy: not fitted again
    assert second.bank_key == first.bank_key
    matcher = make_matcher(second)
    assert matcher.bank is not None and matcher.embedder is not None
    assert set(matcher.bank.probes(matcher.embedder).bears) == {"library-closes"}
    assert fitted == [1]  # the worker's bank came with them
    assert isinstance(matcher.embedder, E5Embedder)
    match("The Elm Street library shuts its doors in May.", claims, matcher)
    # Only the new sentence is embedded: the claim's statement, in both of e5's forms,
    # came with the bank file.
    assert matcher.embedder.computed == 1
    sqlite_store.load_examples([*LIBRARY, (None, None, "Ducks crossed the road.")], now)
    (tmp_path / "changed").mkdir()
    prepare_matching(sqlite_store, claims, None, tmp_path / "changed", now)
    assert fitted == [1, 1]  # new examples: new probes


@pytest.mark.parametrize(
    "passage",
    [
        "xray spending reached 65 billion.",
        "xray spending reached ٦٥ billion.",
        "xray ６５ billion.",
    ],
)
def test_a_number_is_shared_in_any_digits(passage: str) -> None:
    """Arabic-Indic, Persian or full-width digits name the same number as ASCII ones."""
    topics = _Topics()
    claims = [
        Claim("x", (("en", "xray spending of 65 billion."), ("ar", "xray إنفاق 65 مليار."))),
        Claim("y", (("en", "yacht budget of 12 million."),)),
    ]
    at = BEARS_FEATURES.index("shared_numbers")
    _texts, pairs = describe(passage, claims, topics, MatchOptions())
    by = {p.claim.id: p.bears[at] for p in pairs}
    assert by == {"x": 1.0, "y": 0.0}
    _texts, pairs = describe("xray spending reached ٦٦ billion.", claims, topics, MatchOptions())
    assert all(p.bears[at] == 0.0 for p in pairs)


def test_a_large_bank_fits_its_claim_probes_on_a_bounded_support(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel's memory grows with the square of the examples: past MAX_SUPPORT, every
    claim's examples are kept and near misses fill the rest, the same ones every time."""
    from archiver.claims import probes as probes_

    monkeypatch.setattr(probes_, "MAX_SUPPORT", 50)
    rng = np.random.default_rng(6)
    a, b, miss = _direction(60), _direction(61), _direction(62)
    vectors = np.vstack([_cloud(rng, a, 20), _cloud(rng, b, 10), _cloud(rng, miss, 70)])
    labels = [{"a": "supports"}] * 20 + [{"b": "mentions"}] * 10 + [{}] * 70
    probes = fit_probes(vectors, labels)
    support = probes.bears["a"].support
    assert support.shape == (50, DIM) and probes.bears["b"].support is support
    kept = {tuple(np.round(v, 6)) for v in support}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert all(tuple(np.round(v, 6)) in kept for v in unit[:30])  # every claim's example
    again = fit_probes(vectors, labels)
    assert np.array_equal(again.bears["a"].support, support)
    fresh = _cloud(rng, b, 5)
    a_probe, b_probe = probes.bears["a"], probes.bears["b"]
    assert (b_probe.scores(fresh) > b_probe.bias).all()  # over b's share, near b's examples
    assert (a_probe.scores(fresh) < a_probe.bias).all()
    monkeypatch.setattr(probes_, "MAX_SUPPORT", 10)  # fewer than the claims' examples
    assert fit_probes(vectors, labels).bears["a"].support.shape == (10, DIM)
