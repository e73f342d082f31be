"""ament_python package `soundloc_ros`: the runtime that runs on the robot (no torch needed)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "soundloc_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=["numpy", "scipy", "onnxruntime", "Pillow", "PyYAML"],
    extras_require={"capture": ["sounddevice"], "replay": ["rosbags", "tqdm"]},
    python_requires=">=3.10",
    zip_safe=True,
    maintainer="Seed f015cfa4 maintainers",
    maintainer_email="maintainers@users.noreply.h-seed-f015cfa4.example",
    description="Camera + microphone sound-source localization node (heatmap, mask, bearing).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "soundloc_bundle = soundloc_ros.bundle_cli:main",
            "soundloc_node = soundloc_ros.ros.localizer_node:main",
            "soundloc_capture = soundloc_ros.ros.capture_node:main",
            "soundloc-replay-eval = soundloc_ros.replay.cli:main",
        ],
    },
)
