"""The /diagnostics verdict: ERROR whenever inputs arrive and nothing leaves, naming why."""

from collections import Counter

import pytest

from soundloc_ros.core.health import ERROR, OK, WARN, PeriodCounts, RateBounds, RateWindow, assess


def period(images=30, audio=50, published=30, **drops) -> PeriodCounts:
    return PeriodCounts(images, audio, published, Counter(drops))


def test_inputs_without_outputs_is_an_error_naming_the_dominant_drop():
    level, message = assess("", "", period(published=0, processing_error=74, audio_late=6))
    assert level == ERROR
    assert message == (
        "inputs arrive but nothing is published: mostly processing_error (74 of 80 drops)"
    )


def test_inputs_without_outputs_or_drops_is_still_an_error():
    level, message = assess("", "", period(published=0))
    assert level == ERROR and "waiting for their audio" in message


def test_model_and_audio_format_errors_come_first():
    assert assess("bundle missing", "", period(published=0)) == (ERROR, "no model: bundle missing")
    level, message = assess("", "audio_info.sample_rate is 4000000000", period(audio=0))
    assert level == ERROR and message.endswith("sample_rate is 4000000000")


def test_a_missing_input_is_named():
    assert assess("", "", period(audio=0, published=0, no_audio=30)) == (
        WARN, "inputs arrive but nothing is published: waiting for audio",
    )  # fmt: skip
    assert assess("", "", period(audio=0)) == (WARN, "waiting for audio")
    assert assess("", "", period(0, 0, 0)) == (WARN, "waiting for image and audio")


def test_refused_inputs_warn_but_superseded_frames_are_routine():
    assert assess("", "", period(superseded=12)) == (OK, "localizing")
    level, message = assess("", "", period(superseded=12, bad_image=3))
    assert level == WARN and message.endswith("mostly bad_image (3 of 3 drops)")


def test_refused_frames_without_audio_are_an_error_naming_the_refusal():
    """Before: "waiting for audio" (WARN), hiding that every frame was refused."""
    level, message = assess("", "", period(audio=0, published=0, bad_image=30, no_audio=2))
    assert level == ERROR
    assert message == "inputs arrive but nothing is published: mostly bad_image (30 of 30 drops)"


def test_other_problems_are_appended_and_turn_ok_into_warn():
    wrong = "/cam/image_raw carries sensor_msgs/msg/CompressedImage, ..."
    assert assess("", "", period(), [wrong]) == (WARN, f"localizing, but {wrong}")
    level, message = assess("", "", period(0, 0, 0), [wrong])
    assert level == WARN and message == f"waiting for image and audio; {wrong}"


@pytest.mark.parametrize(
    ("rate", "problem"),
    [
        (26.9, "image rate 26.9 Hz is below the expected 30 Hz"),
        (27.0, ""),  # 30 * (1 - 0.1): inside, as FrequencyStatus counts it
        (33.0, ""),
        (33.1, "image rate 33.1 Hz is above the expected 30 Hz"),
    ],
)
def test_rate_bounds_allow_the_tolerance_either_side(rate, problem):
    assert RateBounds(30.0, 30.0, 0.1).problem("image", rate) == problem


def test_zero_bounds_check_nothing():
    assert RateBounds().problem("output", 0.0) == ""
    assert RateBounds(min_hz=5.0).problem("output", 1e6) == ""


def test_the_rate_is_taken_over_the_window():
    window = RateWindow(window=2)
    assert window.rate_hz is None
    for time_s, total in ((0.0, 0), (1.0, 30), (2.0, 60), (3.0, 60)):
        window.add(time_s, total)
    assert window.rate_hz == pytest.approx(15.0)  # (60 - 30) / (3 - 1): the stream stopped at 2 s
