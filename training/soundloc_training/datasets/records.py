"""The one description of a frame that every dataset loader produces.

Loaders (AVSBench-S4 layout, VGG-SS, Flickr-SoundNet; our SynthAV and TuxAV are written to disk in
the AVSBench-S4 layout) only index files: they return `FrameRecord`s. Reading pixels and audio,
computing features and drawing ground-truth maps happen later, in one place, so every dataset is
fed to the model the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GroundTruth:
    """Evaluation-only annotation of one frame; training code never reads it.

    Exactly one of `mask_path` or `boxes` is set:
    - mask_path: a binary PNG mask (AVSBench-S4, SynthAV, TuxAV);
    - boxes: boxes as (xmin, ymin, xmax, ymax) normalized to [0, 1], grouped per annotator
      (VGG-SS: one annotator holding all boxes; Flickr-SoundNet: three annotators), with
      `consensus` telling how to paint them (see soundloc_ros.core.ground_truth.boxes_to_map).
    """

    mask_path: Path | None = None
    boxes: tuple[tuple[tuple[float, float, float, float], ...], ...] = ()
    consensus: bool = False

    def __post_init__(self) -> None:
        if (self.mask_path is None) == (not self.boxes):
            raise ValueError("GroundTruth needs exactly one of mask_path or boxes")


@dataclass(frozen=True)
class FrameRecord:
    """One frame and the audio it is paired with.

    name: the dataset's own frame name (e.g. `<video>_<k>` in AVSBench-S4); `--predictions DIR`
        files are named after it.
    clip: the video/clip id; frames of one clip share it (contrastive batches must know it).
    audio_window: (start_s, end_s) within `audio_path`; None = a window of the model's length
        centred in the file (datasets that pair one still frame with a whole clip).
    category: the clip's class, for analysis and reports only, never for training.
    """

    name: str
    clip: str
    image_path: Path
    audio_path: Path
    audio_window: tuple[float, float] | None
    split: str
    category: str = ""
    ground_truth: GroundTruth | None = None
