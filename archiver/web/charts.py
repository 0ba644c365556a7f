"""The web view's charts, drawn on the server as SVG: a claim's flags on a timeline, a
source's significance per version."""

from __future__ import annotations

from typing import Any

from archiver.app.words import score_words
from store.models import StoredFlag


def timeline(shown: list[StoredFlag], width: int = 640, height: int = 100) -> dict[str, Any]:
    """An SVG timeline of one claim's flags (the ones to show: not rejected): time
    across, stance as lane and colour, score as size; each point links to its flag. The
    first and last flag's dates stand under the axis (``ticks``), with the hours when
    they share a day."""
    if not shown:
        return {"points": [], "ticks": [], "width": width, "height": height}
    times = [f.created_at.timestamp() for f in shown]
    lo, hi = min(times), max(times)
    span = (hi - lo) or 1.0
    lanes = {"supports": 20, "mentions": 45, "contradicts": 70}
    points = [
        {
            "x": round(20 + (t - lo) / span * (width - 40), 1),
            "y": lanes[f.final_stance],
            "r": round(3 + 6 * f.score, 1),
            "stance": f.final_stance,
            "id": f.id,
            "label": f"{f.created_at:%Y-%m-%d} {f.final_stance} "
            f"({score_words(f.score, f.added)}){', removed' if f.removed else ''}: "
            f"{f.evidence[:120]}",
        }
        for f, t in zip(shown, times, strict=True)
    ]
    first, last = min(f.created_at for f in shown), max(f.created_at for f in shown)
    if last.date() != first.date():
        labels = [f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"]
    elif last != first:  # one day: the hours tell its points apart
        labels = [f"{first:%Y-%m-%d %H:%M}", f"{last:%H:%M}"]
    else:
        labels = [f"{first:%Y-%m-%d %H:%M}"]
    ends = ((20, "start"), (width - 20, "end"))
    ticks = [{"x": x, "anchor": a, "label": t} for (x, a), t in zip(ends, labels, strict=False)]
    return {"points": points, "ticks": ticks, "width": width, "height": height}


def sparkline(values: list[float], width: int = 240, height: int = 30) -> str:
    """SVG polyline points for a significance series (0..1)."""
    if not values:
        return ""
    step = width / max(1, len(values) - 1)
    return " ".join(
        f"{round(i * step, 1)},{round(height - 2 - v * (height - 4), 1)}"
        for i, v in enumerate(values)
    )
