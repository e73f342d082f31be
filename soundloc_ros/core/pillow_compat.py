"""Pillow names that moved into enums in Pillow 9.1 (`Image.Resampling`, `Image.Palette`).

Humble robots run Ubuntu 22.04, whose python3-pil is 9.0: there only the module-level constants
exist. Every runtime call site takes its filter or palette from here, so frames are not dropped
with an AttributeError on Jammy.
"""

from types import ModuleType

from PIL import Image


def pillow_constant(enum: str, name: str, image: ModuleType = Image) -> int:
    """`Image.<enum>.<name>` on Pillow >= 9.1, `Image.<name>` before."""
    return getattr(getattr(image, enum, image), name)


BILINEAR = pillow_constant("Resampling", "BILINEAR")
ADAPTIVE = pillow_constant("Palette", "ADAPTIVE")
