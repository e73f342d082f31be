"""What the localizer's /diagnostics status says, decided from counts alone (no ROS here).

The rule that matters most: a node whose inputs arrive but whose outputs do not is broken, not
"localizing", whatever the reason (a bundle that fails on every frame, audio refused, frames
refused or dropped at pairing). So the level is ERROR whenever inputs came in during a period,
some were dropped and nothing was published, and the message names the drop reason that
dominated that period, so the fix can be read off /diagnostics without the log. Rates are
checked as diagnostic_updater's FrequencyStatus checks them: over a window of periods, WARN
outside [min * (1 - tolerance), max * (1 + tolerance)].
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

OK, WARN, ERROR = 0, 1, 2  # the levels of diagnostic_msgs/DiagnosticStatus
ROUTINE_DROPS = ("superseded",)  # the newest frame wins when the camera outpaces inference
WAITING_DROPS = ("no_audio",)  # a frame no audio ever came for: the input is missing, not bad


@dataclass(frozen=True)
class PeriodCounts:
    """What happened during one diagnostics period."""

    images: int
    audio_chunks: int
    published: int
    drops: Counter[str]  # reasons counted during the period only


@dataclass(frozen=True)
class RateBounds:
    """The expected rate of one stream; 0 leaves that side unchecked (the default: a rate
    depends on the camera and microphone, so the robot's configuration sets it)."""

    min_hz: float = 0.0
    max_hz: float = 0.0
    tolerance: float = 0.1

    def problem(self, name: str, rate_hz: float) -> str:
        """'' when `rate_hz` is within bounds, else what is wrong with it."""
        low, high = self.min_hz * (1 - self.tolerance), self.max_hz * (1 + self.tolerance)
        if self.min_hz > 0 and rate_hz < low:
            return f"{name} rate {rate_hz:.1f} Hz is below the expected {self.min_hz:g} Hz"
        if self.max_hz > 0 and rate_hz > high:
            return f"{name} rate {rate_hz:.1f} Hz is above the expected {self.max_hz:g} Hz"
        return ""


class RateWindow:
    """A stream's rate over the last `window` diagnostics periods (FrequencyStatus's window):
    one slow period does not flap the status, and a stopped stream shows within the window."""

    def __init__(self, window: int = 5) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=window + 1)  # (time s, total)

    def add(self, time_s: float, total: int) -> None:
        self._samples.append((time_s, total))

    @property
    def rate_hz(self) -> float | None:
        """None until two periods have been seen."""
        if len(self._samples) < 2:
            return None
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None


def dominant_drop(drops: Counter[str]) -> str:
    """'reason (n of total)' for the commonest drop reason; '' when nothing was dropped."""
    total = sum(drops.values())
    if not total:
        return ""
    reason, count = max(sorted(drops.items()), key=lambda item: item[1])
    return f"{reason} ({count} of {total} drops)"


def _with(message: str, problems: Sequence[str]) -> str:
    return "; ".join([message, *problems])


def assess(
    model_error: str, stream_error: str, period: PeriodCounts, problems: Sequence[str] = ()
) -> tuple[int, str]:
    """(level, message) for one period; model and audio-format errors come first.

    problems: what else is wrong and WARN-worthy (rates out of bounds, publishers of the wrong
    type on an input topic), appended to the message."""
    if model_error:
        return ERROR, f"no model: {model_error}"
    if stream_error:
        return ERROR, f"audio format unusable: {stream_error}"
    missing = [name for name, n in (("image", period.images), ("audio", period.audio_chunks))
               if n == 0]  # fmt: skip
    refused = Counter({k: v for k, v in period.drops.items() if k not in WAITING_DROPS})
    if period.published == 0 and len(missing) < 2:
        nothing = "inputs arrive but nothing is published"
        if refused:
            return ERROR, _with(f"{nothing}: mostly {dominant_drop(refused)}", problems)
        if missing:
            return WARN, _with(f"{nothing}: waiting for {missing[0]}", problems)
        return ERROR, _with(f"{nothing}: frames are still waiting for their audio", problems)
    if missing:
        return WARN, _with(f"waiting for {' and '.join(missing)}", problems)
    unusual = Counter({k: v for k, v in period.drops.items() if k not in ROUTINE_DROPS})
    if unusual:
        return WARN, _with(f"localizing, but dropping inputs: mostly {dominant_drop(unusual)}",
                           problems)  # fmt: skip
    if problems:
        return WARN, "localizing, but " + "; ".join(problems)
    return OK, "localizing"
