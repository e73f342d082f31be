"""The /diagnostics verdict: ERROR whenever inputs arrive and nothing leaves, naming why."""

from collections import Counter

from soundloc_ros.core.health import ERROR, OK, WARN, PeriodCounts, assess


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
    assert assess("", "", period(audio=0, published=0)) == (WARN, "waiting for audio")
    assert assess("", "", period(0, 0, 0)) == (WARN, "waiting for image and audio")


def test_refused_inputs_warn_but_superseded_frames_are_routine():
    assert assess("", "", period(superseded=12)) == (OK, "localizing")
    level, message = assess("", "", period(superseded=12, bad_image=3))
    assert level == WARN and message.endswith("mostly bad_image (3 of 3 drops)")
