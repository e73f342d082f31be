"""Per-frame cost of everything the node does before inference: view a 640x480 bgr8 camera
frame, resize and normalize it into the 224x224 image tensor, decode 1 s of audio, and compute
the log-mel front-end (at 16 kHz, and resampled from 48 kHz).

DESIGN.md §7 asks that all non-inference work stay under 15 % of per-frame time; at the 25 Hz
target a frame has 40 ms, so these costs are reported as a share of that budget too.
"""

import numpy as np
from machine import record, time_call

from soundloc_ros.core.bundle import ImageInputSpec, TensorSpec
from soundloc_ros.core.features import LogMelConfig, compute_features
from soundloc_ros.core.image_codec import decode_image, encode_image
from soundloc_ros.core.pcm import decode_pcm, downmix, encode_pcm, float_to_pcm, pcm_to_float
from soundloc_ros.core.preprocess import frame_tensor

FRAME_BUDGET_MS = 1000 / 25


def main() -> None:
    rng = np.random.default_rng(0)
    config = LogMelConfig()
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    frame_bytes, step = encode_image(frame, "bgr8")
    audio_16k = encode_pcm(float_to_pcm(rng.normal(0, 0.1, (16000, 1)), "S16LE"), "S16LE")
    audio_48k = rng.normal(0, 0.1, 48000)
    image_spec = ImageInputSpec(TensorSpec("image", (1, 3, 224, 224)))

    figures = {
        # what the node does: a view on the message, then resize before reordering channels
        "image_decode_bgr8_640x480": time_call(
            lambda: decode_image(frame_bytes, 480, 640, "bgr8", step, False)
        ),
        "image_tensor_bgr8_640x480_to_224": time_call(
            lambda: frame_tensor(frame, "bgr8", image_spec)
        ),
        "audio_decode_1s_s16le": time_call(
            lambda: downmix(pcm_to_float(decode_pcm(audio_16k, "S16LE", 1)))
        ),
        "logmel_1s_16k": time_call(lambda: compute_features(np.zeros(16000), 16000, config)),
        "logmel_1s_from_48k": time_call(lambda: compute_features(audio_48k, 48000, config)),
    }
    per_frame = (
        "image_decode_bgr8_640x480",
        "image_tensor_bgr8_640x480_to_224",
        "audio_decode_1s_s16le",
        "logmel_1s_16k",
    )
    total = sum(figures[name]["median_ms"] for name in per_frame)
    figures["total_median_ms_16k_path"] = total
    figures["share_of_25hz_frame_budget"] = total / FRAME_BUDGET_MS
    for name, value in figures.items():
        print(f"{name:32s} {value}")
    print(f"recorded in {record('preprocessing', figures)}")


if __name__ == "__main__":
    main()
