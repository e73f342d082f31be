"""What the localizer's /diagnostics status says, decided from counts alone (no ROS here).

The rule that matters most: a node whose inputs arrive but whose outputs do not is broken, not
"localizing", whatever the reason (a bundle that fails on every frame, audio refused, frames
dropped at pairing). So the level is ERROR whenever image and audio both came in during a period
and nothing was published, and the message names the drop reason that dominated that period, so
the fix can be read off /diagnostics without the log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

OK, WARN, ERROR = 0, 1, 2  # the levels of diagnostic_msgs/DiagnosticStatus
ROUTINE_DROPS = ("superseded",)  # the newest frame wins when the camera outpaces inference


@dataclass(frozen=True)
class PeriodCounts:
    """What happened during one diagnostics period."""

    images: int
    audio_chunks: int
    published: int
    drops: Counter[str]  # reasons counted during the period only


def dominant_drop(drops: Counter[str]) -> str:
    """'reason (n of total)' for the commonest drop reason; '' when nothing was dropped."""
    total = sum(drops.values())
    if not total:
        return ""
    reason, count = max(sorted(drops.items()), key=lambda item: item[1])
    return f"{reason} ({count} of {total} drops)"


def assess(model_error: str, stream_error: str, period: PeriodCounts) -> tuple[int, str]:
    """(level, message) for one period; model and audio-format errors come first."""
    if model_error:
        return ERROR, f"no model: {model_error}"
    if stream_error:
        return ERROR, f"audio format unusable: {stream_error}"
    missing = [name for name, n in (("image", period.images), ("audio", period.audio_chunks))
               if n == 0]  # fmt: skip
    if missing:
        return WARN, f"waiting for {' and '.join(missing)}"
    dominant = dominant_drop(period.drops)
    if period.published == 0:
        why = f"mostly {dominant}" if dominant else "frames are still waiting for their audio"
        return ERROR, f"inputs arrive but nothing is published: {why}"
    unusual = Counter({k: v for k, v in period.drops.items() if k not in ROUTINE_DROPS})
    if unusual:
        return WARN, f"localizing, but dropping inputs: mostly {dominant_drop(unusual)}"
    return OK, "localizing"
