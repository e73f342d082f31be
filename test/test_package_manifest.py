"""package.xml against what the runtime imports: `rosdep install` must bring every module in,
and every key must resolve on Ubuntu (Humble: Jammy, Jazzy: Noble) and Debian."""

import ast
import re
import sys
from pathlib import Path

from catkin_pkg.package import Package, parse_package

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = sorted([*(ROOT / "soundloc_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")])

# imports whose rosdep key is not the module's own name (rosdistro rosdep/base.yaml, python.yaml)
PYTHON_KEYS = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "PIL": "python3-pil",
    "onnxruntime": "python3-onnxruntime-pip",
    "sounddevice": "python3-sounddevice-pip",
    "rosbags": "python3-rosbags-pip",
    "tqdm": "python3-tqdm",
}
# optional accelerators, imported lazily by their backend; no rosdep key can install them
NOT_ROSDEP = {
    "tensorrt": "JetPack / NVIDIA's TensorRT packages",
    "pycuda": "JetPack / pip on the robot",
    "torch": "the optional torch backend (soundloc_training)",
}
# keys in rosdistro that resolve to packages the distributions do not have
BROKEN_KEYS = {"portaudio": "libportaudio-dev has no install candidate on Ubuntu"}


def manifest() -> Package:
    """package.xml as rosdep, colcon and bloom read it (catkin_pkg validates format 3)."""
    package = parse_package(ROOT / "package.xml")
    package.validate()
    return package


def keys(kind: str) -> set[str]:
    """exec_depend or test_depend keys (a <depend> counts as both)."""
    return {dependency.name for dependency in getattr(manifest(), f"{kind}s")}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports in one file, including lazy ones."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"soundloc_ros"}


def test_every_runtime_import_is_declared():
    declared = keys("exec_depend")
    missing = {}
    for path in RUNTIME:
        for module in imported_modules(path) - set(NOT_ROSDEP):
            key = PYTHON_KEYS.get(module, module)  # ROS packages: the key is the package name
            if key not in declared:
                missing.setdefault(key, []).append(str(path.relative_to(ROOT)))
    assert not missing, (
        "add <exec_depend> to package.xml (a pip module also needs its key in PYTHON_KEYS): "
        f"{missing}"
    )


def test_every_ros2_command_a_launch_file_runs_is_declared():
    """`ros2 bag play` needs ros2bag (the `ros2` CLI verbs are packages of their own)."""
    declared = keys("exec_depend")
    for path in sorted((ROOT / "launch").glob("*.py")):
        for verb in re.findall(r'"ros2",\s*"(\w+)"', path.read_text()):
            assert f"ros2{verb}" in declared, f"{path.name} runs `ros2 {verb}`: declare ros2{verb}"


def test_no_key_is_one_that_rosdep_cannot_install():
    broken = {key: why for key, why in BROKEN_KEYS.items() if key in keys("exec_depend")}
    assert not broken, broken
    assert "portaudio19-dev" in keys("exec_depend"), "sounddevice needs the PortAudio library"


def test_the_test_tools_are_declared():
    assert {"python3-pytest", "python3-hypothesis"} <= keys("test_depend")


def test_the_maintainer_is_the_same_everywhere():
    (maintainer,) = manifest().maintainers
    setup = (ROOT / "setup.py").read_text()
    assert f'maintainer="{maintainer.name}"' in setup
    assert f'maintainer_email="{maintainer.email}"' in setup
    changelog = (ROOT / "CHANGELOG.rst").read_text()
    assert f"* Contributors: {maintainer.name}" in changelog
