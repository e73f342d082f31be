"""The runtime on Humble's Pillow 9.0, where `Image.Resampling` and `Image.Palette` do not exist."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from soundloc_ros.core import pictures, preprocess
from soundloc_ros.core.bundle import ImageInputSpec, TensorSpec
from soundloc_ros.core.pillow_compat import pillow_constant

ROOT = Path(__file__).resolve().parents[1]
ENUMS_SINCE_9_1 = ("Resampling", "Palette", "Transpose", "Dither", "Quantize")


class Pillow90:
    """PIL.Image as Jammy's 9.0 has it: every name but the enums that 9.1 added. (Deleting them
    from the real module would break Pillow's own code, which uses them internally.)"""

    def __getattr__(self, name: str):
        if name in ENUMS_SINCE_9_1:
            raise AttributeError(f"module 'PIL.Image' has no attribute '{name}' (Pillow 9.0)")
        return getattr(Image, name)


@pytest.fixture
def pillow_9_0(monkeypatch) -> Pillow90:
    """The runtime modules see Pillow 9.0's Image."""
    old = Pillow90()
    for module in (preprocess, pictures):
        monkeypatch.setattr(module, "Image", old)
    return old


def test_the_compat_names_resolve_on_pillow_9_0(pillow_9_0):
    assert pillow_constant("Resampling", "BILINEAR", pillow_9_0) == Image.BILINEAR
    assert pillow_constant("Palette", "ADAPTIVE", pillow_9_0) == Image.ADAPTIVE


def test_frames_resize_and_gifs_save_on_pillow_9_0(pillow_9_0, tmp_path):
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert preprocess.resize_rgb(frame, 8, 8).shape == (8, 8, 3)
    spec = ImageInputSpec(TensorSpec("image", (1, 3, 8, 8)), "rgb", (0.5,) * 3, (0.5,) * 3)
    assert preprocess.frame_tensor(frame, "rgb8", spec).shape == (1, 3, 8, 8)
    assert pictures.save_gif(tmp_path / "a.gif", [frame, frame], fps=10).stat().st_size > 0


def test_no_runtime_file_uses_an_enum_that_pillow_9_0_lacks():
    pattern = re.compile(rf"\.({'|'.join(ENUMS_SINCE_9_1)})\.")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "soundloc_ros").rglob("*.py"))
        if path.name != "pillow_compat.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, f"take the name from soundloc_ros.core.pillow_compat: {offenders}"
