"""The model bundle: the one contract between training (export) and the runtime (node, replay).

A bundle is a directory holding `model.onnx` and `bundle.json`. The JSON states everything the
runtime must honour to feed the network exactly as training did: input tensor names, static
shapes, dtypes and image normalization; the audio front-end parameters; output names and what
their values mean; where the model came from; and the sha256 of the ONNX file, so a bundle whose
model was swapped or truncated is refused instead of silently producing wrong maps.

Format version 1 (a bundle.json, abridged):

    {"format_version": 1,
     "model": {"file": "model.onnx", "sha256": "<64 hex>", "opset": 17,
               "torch": {"file": "model.pt2", "sha256": "<64 hex>"}},   (optional)
     "inputs": {
       "image": {"name": "image", "shape": [1, 3, 224, 224], "dtype": "float32",
                 "channel_order": "rgb", "mean": [0.485, 0.456, 0.406],
                 "std": [0.229, 0.224, 0.225]},
       "audio": {"name": "audio", "shape": [1, 1, 64, 97], "dtype": "float32"}},
     "audio_frontend": {... every LogMelConfig field ...},
     "outputs": {"heatmap": {"name": "heatmap", "shape": [1, 1, 56, 56], "dtype": "float32",
                             "values": "probability", "meaning": "..."},
                 "mask": {...optional, same fields...},
                 "coarse": {...optional, same fields...},
                 "detector": {...optional, same fields...}},
     "training": {"method": "baseline", "data": "TuxAV train", ...free-form...},
     "detection": {"output": "detector", "statistic": "max_cosine", "scale": 0.03,  (optional)
                   "threshold": 0.46,
                   "false_alarm_rates": {"mismatched": 0.15, "noise": 0.05},
                   "calibration": {...free-form: what was measured on which frames...}}}

Image pixels are scaled to [0, 1] (uint8 / 255) and then normalized per channel as
(x - mean) / std, in the stated channel order, NCHW. Output `values` is "probability" (already in
[0, 1]) or "logit" (the runtime applies a sigmoid); the optional `meaning` says in words what the
numbers are (e.g. min-max normalized within the frame, so relative, not calibrated). Without a
`mask` output the runtime thresholds the heatmap. `coarse`, optional, is the coarse localizer's
map before any refinement, for debugging and comparison. `detector`, optional, is a second
coarse map from another localizer's heads on the same backbone, kept only to be scored. The
no-source decision (core.detection) compares the largest cosine of the output that
`detection.output` names (coarse or detector) with the calibrated threshold. `meaning`, `coarse`,
`detector` and `detection` were added within format version 1:
bundles without them load as before (without `detection` every frame above the energy gate has a
source), and older runtimes ignore them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundloc_ros.core.atomic import atomic_write_bytes, atomic_write_text
from soundloc_ros.core.detection import SourceDetection
from soundloc_ros.core.features import FeatureConfigError, LogMelConfig

BUNDLE_FORMAT_VERSION = 1
METADATA_FILE = "bundle.json"
ONNX_FILE = "model.onnx"
TORCH_FILE = "model.pt2"
SUPPORTED_DTYPES = ("float32", "float16")
OUTPUT_VALUES = ("probability", "logit")
CHANNEL_ORDERS = ("rgb", "bgr")
SCORED_OUTPUTS = ("coarse", "detector")  # what detection.output may name
MAX_METADATA_BYTES = 1 << 20  # bundle.json is ~2 KB; a larger one is not ours


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file, the field and the remedy."""


@dataclass(frozen=True)
class TensorSpec:
    """One named graph input or output with a static shape."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class ImageInputSpec:
    tensor: TensorSpec
    channel_order: str = "rgb"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @property
    def height(self) -> int:
        return self.tensor.shape[2]

    @property
    def width(self) -> int:
        return self.tensor.shape[3]


@dataclass(frozen=True)
class OutputSpec:
    tensor: TensorSpec
    values: str = "probability"
    meaning: str = ""  # free text for people: what the numbers are; "" when not stated


@dataclass(frozen=True)
class ModelBundle:
    """Parsed, validated bundle.json; `directory` is where it was loaded from (not serialized)."""

    image: ImageInputSpec
    audio: TensorSpec
    audio_frontend: LogMelConfig
    heatmap: OutputSpec
    mask: OutputSpec | None = None
    training: Mapping[str, Any] = field(default_factory=dict)
    coarse: OutputSpec | None = None
    detector: OutputSpec | None = None  # a detection branch's coarse map (core.detection)
    detection: SourceDetection | None = None  # the no-source decision; None: not calibrated
    onnx_sha256: str = ""
    opset: int = 17
    onnx_file: str = ONNX_FILE
    torch_file: str | None = None  # optional torch.export program, for the torch backend
    torch_sha256: str = ""
    format_version: int = BUNDLE_FORMAT_VERSION
    directory: Path | None = field(default=None, compare=False)

    @property
    def outputs(self) -> dict[str, OutputSpec]:
        """The outputs present, by bundle.json key, in the graph's order (heatmap, mask, coarse,
        detector)."""
        present = {"heatmap": self.heatmap, "mask": self.mask, "coarse": self.coarse,
                   "detector": self.detector}  # fmt: skip
        return {key: spec for key, spec in present.items() if spec is not None}

    @property
    def onnx_path(self) -> Path:
        return self._path(self.onnx_file)

    @property
    def torch_path(self) -> Path:
        if self.torch_file is None:
            raise BundleError(
                "this bundle has no PyTorch program (model.torch in bundle.json); re-export it "
                "with soundloc-export to use the torch backend"
            )
        return self._path(self.torch_file)

    def _path(self, file: str) -> Path:
        if self.directory is None:
            raise BundleError("this bundle was not loaded from or written to a directory")
        return self.directory / file

    def to_dict(self) -> dict[str, Any]:
        outputs = {key: _output_to_dict(spec) for key, spec in self.outputs.items()}
        return {
            "format_version": self.format_version,
            "model": {
                "file": self.onnx_file,
                "sha256": self.onnx_sha256,
                "opset": self.opset,
                **(
                    {"torch": {"file": self.torch_file, "sha256": self.torch_sha256}}
                    if self.torch_file
                    else {}
                ),
            },
            "inputs": {
                "image": {
                    **_tensor_to_dict(self.image.tensor),
                    "channel_order": self.image.channel_order,
                    "mean": list(self.image.mean),
                    "std": list(self.image.std),
                },
                "audio": _tensor_to_dict(self.audio),
            },
            "audio_frontend": self.audio_frontend.to_dict(),
            "outputs": outputs,
            "training": dict(self.training),
            **({"detection": self.detection.to_dict()} if self.detection else {}),
        }


def _tensor_to_dict(tensor: TensorSpec) -> dict[str, Any]:
    return {"name": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype}


def _output_to_dict(output: OutputSpec) -> dict[str, Any]:
    meaning = {"meaning": output.meaning} if output.meaning else {}
    return {**_tensor_to_dict(output.tensor), "values": output.values, **meaning}


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Fields:
    """Reads a nested JSON object, naming the dotted path of whatever is missing or wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, why: str) -> BundleError:
        return BundleError(f"{self.source}: {path} {why}")

    def get(
        self, obj: Mapping[str, Any], path: str, key: str, kind: type | tuple[type, ...]
    ) -> Any:
        full = f"{path}.{key}" if path else key
        if not isinstance(obj, Mapping):
            raise self.fail(path or "the top level", f"must be an object, got {type(obj).__name__}")
        if key not in obj:
            raise self.fail(full, "is missing")
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(full, f"must be {names}, got {value!r}")
        return value

    def shape(self, obj: Mapping[str, Any], path: str, rank: int) -> tuple[int, ...]:
        value = self.get(obj, path, "shape", list)
        if len(value) != rank or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value
        ):
            raise self.fail(
                f"{path}.shape",
                f"must be {rank} positive integers (static shapes only), got {value!r}",
            )
        return tuple(value)

    def tensor(self, obj: Mapping[str, Any], path: str, rank: int) -> TensorSpec:
        name = self.get(obj, path, "name", str)
        if not name:
            raise self.fail(f"{path}.name", "must not be empty")
        dtype = self.get(obj, path, "dtype", str)
        if dtype not in SUPPORTED_DTYPES:
            raise self.fail(f"{path}.dtype", f"must be one of {SUPPORTED_DTYPES}, got {dtype!r}")
        return TensorSpec(name=name, shape=self.shape(obj, path, rank), dtype=dtype)

    def file_name(self, obj: Mapping[str, Any], path: str) -> str:
        value = self.get(obj, path, "file", str)
        if not value or Path(value).name != value:
            raise self.fail(
                f"{path}.file", f"must be a plain file name inside the bundle, got {value!r}"
            )
        return value

    def sha256(self, obj: Mapping[str, Any], path: str) -> str:
        value = self.get(obj, path, "sha256", str)
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise self.fail(f"{path}.sha256", f"must be 64 lower-case hex digits, got {value!r}")
        return value

    def triple(self, obj: Mapping[str, Any], path: str, key: str) -> tuple[float, float, float]:
        value = self.get(obj, path, key, list)
        if len(value) != 3 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        ):
            raise self.fail(f"{path}.{key}", f"must be 3 finite numbers, got {value!r}")
        return (float(value[0]), float(value[1]), float(value[2]))

    def output(self, obj: Mapping[str, Any], path: str) -> OutputSpec:
        values = self.get(obj, path, "values", str)
        if values not in OUTPUT_VALUES:
            raise self.fail(f"{path}.values", f"must be one of {OUTPUT_VALUES}, got {values!r}")
        meaning = self.get(obj, path, "meaning", str) if "meaning" in obj else ""
        return OutputSpec(tensor=self.tensor(obj, path, 4), values=values, meaning=meaning)


def parse_bundle(values: Mapping[str, Any], source: str = METADATA_FILE) -> ModelBundle:
    """Validate a bundle.json object; every error names the offending field."""
    fields = _Fields(source)
    version = fields.get(values, "", "format_version", int)
    if version > BUNDLE_FORMAT_VERSION:
        raise fields.fail(
            "format_version",
            f"is {version}, newer than this soundloc_ros understands ({BUNDLE_FORMAT_VERSION}); "
            "upgrade soundloc_ros or export the bundle with a matching soundloc_training",
        )
    if version < 1:
        raise fields.fail("format_version", f"must be >= 1, got {version}")

    model = fields.get(values, "", "model", Mapping)
    onnx_file = fields.file_name(model, "model")
    sha256 = fields.sha256(model, "model")
    opset = fields.get(model, "model", "opset", int)
    torch_file, torch_sha256 = None, ""
    if "torch" in model:
        torch_obj = fields.get(model, "model", "torch", Mapping)
        torch_file = fields.file_name(torch_obj, "model.torch")
        torch_sha256 = fields.sha256(torch_obj, "model.torch")

    inputs = fields.get(values, "", "inputs", Mapping)
    image_obj = fields.get(inputs, "inputs", "image", Mapping)
    image_tensor = fields.tensor(image_obj, "inputs.image", 4)
    if image_tensor.shape[:2] != (1, 3):
        raise fields.fail(
            "inputs.image.shape",
            f"must be [1, 3, H, W] (one RGB frame, NCHW), got {list(image_tensor.shape)}",
        )
    channel_order = fields.get(image_obj, "inputs.image", "channel_order", str)
    if channel_order not in CHANNEL_ORDERS:
        raise fields.fail(
            "inputs.image.channel_order", f"must be one of {CHANNEL_ORDERS}, got {channel_order!r}"
        )
    std = fields.triple(image_obj, "inputs.image", "std")
    if min(std) <= 0:
        raise fields.fail("inputs.image.std", f"must be positive, got {list(std)}")
    image = ImageInputSpec(
        tensor=image_tensor,
        channel_order=channel_order,
        mean=fields.triple(image_obj, "inputs.image", "mean"),
        std=std,
    )

    try:
        frontend = LogMelConfig.from_dict(fields.get(values, "", "audio_frontend", Mapping))
    except FeatureConfigError as error:
        raise fields.fail("audio_frontend", f"is invalid: {error}") from None
    audio = fields.tensor(fields.get(inputs, "inputs", "audio", Mapping), "inputs.audio", 4)
    expected_audio = (1, 1, *frontend.shape)
    if audio.shape != expected_audio:
        raise fields.fail(
            "inputs.audio.shape",
            f"is {list(audio.shape)} but audio_frontend produces {list(expected_audio)} "
            f"(n_mels={frontend.n_mels}, n_frames={frontend.n_frames}); re-export the bundle",
        )

    outputs = fields.get(values, "", "outputs", Mapping)
    fields.get(outputs, "outputs", "heatmap", Mapping)  # required; the others are not
    parsed = {}
    for key in ("heatmap", "mask", "coarse", "detector"):
        if key in outputs:
            path = f"outputs.{key}"
            parsed[key] = fields.output(fields.get(outputs, "outputs", key, Mapping), path)
            if parsed[key].tensor.shape[:2] != (1, 1):
                shape = list(parsed[key].tensor.shape)
                raise fields.fail(f"{path}.shape", f"must be [1, 1, h, w], got {shape}")
    names = [image.tensor.name, audio.name] + [spec.tensor.name for spec in parsed.values()]
    if len(set(names)) != len(names):
        raise fields.fail("inputs/outputs", f"tensor names must be distinct, got {names}")

    detection = _detection(fields, values, parsed)
    return ModelBundle(
        image=image,
        audio=audio,
        audio_frontend=frontend,
        heatmap=parsed["heatmap"],
        mask=parsed.get("mask"),
        coarse=parsed.get("coarse"),
        detector=parsed.get("detector"),
        detection=detection,
        training=dict(fields.get(values, "", "training", Mapping)) if "training" in values else {},
        onnx_sha256=sha256,
        opset=opset,
        onnx_file=onnx_file,
        torch_file=torch_file,
        torch_sha256=torch_sha256,
        format_version=version,
    )


def _detection(
    fields: _Fields, values: Mapping[str, Any], outputs: Mapping[str, OutputSpec]
) -> SourceDetection | None:
    """The optional `detection` section; the output it scores must be there."""
    if "detection" not in values:
        return None
    section = fields.get(values, "", "detection", Mapping)
    scored = section.get("output", "coarse")
    if scored not in SCORED_OUTPUTS or scored not in outputs:
        raise fields.fail(
            "detection", f"needs a `{scored}` output to score (one of {SCORED_OUTPUTS}); "
            "re-export the bundle",
        )  # fmt: skip
    rates = fields.get(section, "detection", "false_alarm_rates", Mapping)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rates.values()):
        raise fields.fail("detection.false_alarm_rates", f"must map kinds to numbers, got {rates}")
    try:
        return SourceDetection(
            threshold=float(fields.get(section, "detection", "threshold", (int, float))),
            scale=float(fields.get(section, "detection", "scale", (int, float))),
            statistic=fields.get(section, "detection", "statistic", str),
            output=scored,
            false_alarm_rates={str(k): float(v) for k, v in rates.items()},
            calibration=dict(fields.get(section, "detection", "calibration", Mapping)),
        )
    except ValueError as error:
        raise fields.fail("detection", f"is unusable: {error}") from None


def load_bundle(directory: str | Path, verify_checksum: bool = True) -> ModelBundle:
    """Load and validate a bundle directory; the ONNX file's sha256 must match bundle.json."""
    root = Path(directory)
    metadata_path = root / METADATA_FILE
    if not root.is_dir():
        raise BundleError(
            f"model bundle {root} is not a directory; point the bundle parameter at a directory "
            f"holding {METADATA_FILE} and {ONNX_FILE} (made by soundloc-export)"
        )
    if not metadata_path.is_file():
        raise BundleError(f"{metadata_path} is missing: {root} is not a model bundle")
    size = metadata_path.stat().st_size
    if size > MAX_METADATA_BYTES:
        raise BundleError(
            f"{metadata_path} is {size} bytes, over the {MAX_METADATA_BYTES}-byte limit of a "
            "bundle.json; re-export the bundle"
        )
    try:
        values = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(
            f"{metadata_path} is not valid JSON ({error}); re-export the bundle"
        ) from None
    except RecursionError:
        raise BundleError(
            f"{metadata_path} nests too deeply to be a bundle.json; re-export the bundle"
        ) from None
    bundle = dataclasses.replace(parse_bundle(values, str(metadata_path)), directory=root)
    onnx_path = bundle.onnx_path
    if not onnx_path.is_file():
        raise BundleError(f"{onnx_path} is missing; bundle.json names it in model.file")
    if verify_checksum:
        _verify_checksum(onnx_path, bundle.onnx_sha256)
    return bundle


def _verify_checksum(path: Path, expected: str) -> None:
    actual = sha256_of_file(path)
    if actual != expected:
        raise BundleError(
            f"{path} has sha256 {actual}, but {METADATA_FILE} says {expected}: "
            "the model file was changed or corrupted after export; re-export the bundle"
        )


def verify_torch_program(bundle: ModelBundle) -> Path:
    """The bundle's PyTorch program, present and unmodified (checked only when it is used)."""
    path = bundle.torch_path
    if not path.is_file():
        raise BundleError(f"{path} is missing; bundle.json names it in model.torch.file")
    _verify_checksum(path, bundle.torch_sha256)
    return path


def write_bundle(
    directory: str | Path,
    bundle: ModelBundle,
    onnx_model: bytes,
    torch_program: bytes | None = None,
) -> ModelBundle:
    """Write model.onnx (and the optional PyTorch program) and bundle.json, each atomically,
    JSON last, and return the result.

    bundle.json is written after the models, so a reader never sees metadata whose checksum
    names a model file that is not there yet.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = dataclasses.replace(
        bundle,
        onnx_sha256=hashlib.sha256(onnx_model).hexdigest(),
        torch_file=(bundle.torch_file or TORCH_FILE) if torch_program is not None else None,
        torch_sha256=hashlib.sha256(torch_program).hexdigest() if torch_program else "",
        directory=root,
    )
    parse_bundle(written.to_dict(), str(root / METADATA_FILE))  # refuse to write what won't load
    atomic_write_bytes(root / written.onnx_file, onnx_model)
    if torch_program is not None:
        atomic_write_bytes(root / written.torch_path.name, torch_program)
    atomic_write_text(root / METADATA_FILE, json.dumps(written.to_dict(), indent=2) + "\n")
    return written
