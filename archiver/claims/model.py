"""The trained claims model: two linear scorers over the features, and a threshold.

``ClaimModel`` decides whether a pair bears on the claim (a logistic model over
``BEARS_FEATURES``) and its stance (one-vs-rest over ``STANCE_FEATURES``). The
package ships one (``data/claims-model.json``); ``claimwatch claims train``
(``archiver.claims.training``) makes another from labelled passages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from archiver.claims.features import BEARS_FEATURES, STANCE_FEATURES
from archiver.claims.rules import STANCES
from store.errors import NESTED, ConfigError

FORMAT = 8  # of the model file (see DEFAULT_MODEL); 8: the probes' lift over their base rate


@dataclass(frozen=True)
class Linear:
    """Standardized features times weights plus bias (one row per output)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (outputs, features)
    bias: np.ndarray  # (outputs,)

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(x) - self.mean) / self.scale
        return np.asarray(z @ self.weights.T + self.bias)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "weights": [[round(float(v), 6) for v in row] for row in self.weights],
            "bias": [round(float(v), 6) for v in self.bias],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Linear:
        return cls(
            np.asarray(d["mean"], np.float64),
            np.asarray(d["scale"], np.float64),
            np.asarray(d["weights"], np.float64),
            np.asarray(d["bias"], np.float64),
        )


@dataclass(frozen=True)
class ClaimModel:
    """The two scorers and the bears-on threshold, as trained (see ``training``)."""

    bears: Linear
    stance: Linear
    threshold: float  # bears on the claim at this probability, when it has examples
    embedder: str
    info: dict[str, Any] = field(default_factory=dict, compare=False)
    threshold_no_examples: float = 0.5  # ... and when it has only its statements
    # ... and when it has ``few_examples`` or fewer (a reviewer's first verdicts). A model
    # file without these (trained before 2026-12-03) uses ``threshold`` for them.
    threshold_few_examples: float | None = None
    few_examples: int = 12

    def threshold_for(self, examples: int) -> float:
        """The bears-on threshold for a claim with this many examples."""
        if examples <= 0:
            return self.threshold_no_examples
        if examples <= self.few_examples and self.threshold_few_examples is not None:
            return self.threshold_few_examples
        return self.threshold

    def bears_probability(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-self.bears.scores(x)[:, 0])))

    def stance_of(self, x: np.ndarray) -> tuple[str, float]:
        s = self.stance.scores(x)[0]
        p = np.exp(s - s.max())
        p /= p.sum()
        k = int(p.argmax())
        return STANCES[k], float(p[k])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "embedder": self.embedder,
            "threshold": round(self.threshold, 6),
            "threshold_no_examples": round(self.threshold_no_examples, 6),
            **(
                {
                    "threshold_few_examples": round(self.threshold_few_examples, 6),
                    "few_examples": self.few_examples,
                }
                if self.threshold_few_examples is not None
                else {}
            ),
            "bears": {"features": list(BEARS_FEATURES), **self.bears.to_dict()},
            "stance": {
                "classes": list(STANCES),
                "features": list(STANCE_FEATURES),
                **self.stance.to_dict(),
            },
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model") -> ClaimModel:
        try:
            if (
                d["format"] != FORMAT
                or d["bears"]["features"] != list(BEARS_FEATURES)
                or d["stance"]["features"] != list(STANCE_FEATURES)
            ):
                raise ValueError("made for another version of claimwatch")
            return cls(
                Linear.from_dict(d["bears"]),
                Linear.from_dict(d["stance"]),
                float(d["threshold"]),
                str(d["embedder"]),
                dict(d.get("info", {})),
                float(d["threshold_no_examples"]),
                float(d["threshold_few_examples"]) if "threshold_few_examples" in d else None,
                int(d.get("few_examples", 12)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                where,
                f"is not a claims model this claimwatch can use ({exc}); retrain it with "
                "'claimwatch claims train', or unset matching.model to use the shipped one",
            ) from None


DEFAULT_MODEL = "claims-model.json"
# Format 8 files from 2026-12-03 on also carry ``threshold_few_examples`` and
# ``few_examples``; an earlier one reads as having the with-examples threshold for both.
# Format 5: the claim probes are kernel ridge regression (archiver.claims.probes), so the
# probe features are scores of about 0 to 1, no longer log-odds; the features are the same.
# Format 4 adds ex_count (how many examples the claim has) and was trained on sparse banks
# too (training.sparse_banks), so a story with a reviewer's first verdicts is scored well.
# Format 3 adds the probe features (archiver.claims.probes).
# Format 2: the stance model reads STANCE_FEATURES only. Format 1 also read the product of
# the passage and statement vectors, which cross-validation showed hurt stance (0.65 vs
# 0.71 on the seed corpus; 0.50 vs 0.63 for claims left out of training).


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> ClaimModel:
    """The model at ``path``, or the one shipped in the package."""
    if path is None:
        text = resources.files("archiver").joinpath("data", DEFAULT_MODEL).read_text("utf-8")
        return ClaimModel.from_dict(json.loads(text), f"archiver/data/{DEFAULT_MODEL}")
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(path, f"cannot be read as a claims model ({exc})") from None
    except RecursionError:
        raise ConfigError(path, NESTED) from None
    return ClaimModel.from_dict(data, path)
