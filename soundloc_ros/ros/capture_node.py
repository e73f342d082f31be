"""`soundloc_capture`: a microphone (any PortAudio input) to audio_common_msgs, stamped right.

Publishes the topics ros-drivers/audio_common `audio_capture` publishes, with its types, so
either driver can feed either's consumers: `audio_stamped` (AudioDataStamped, stamp = time of
the chunk's first sample; what soundloc_node reads), `audio` (the same bytes as unstamped
AudioData, for consumers such as audio_play; built only while one subscribes) and `audio_info`
(AudioInfo, transient local, so a late subscriber gets it at once), in audio_capture's wave
mode. Stamps come from PortAudio's ADC times mapped onto the system clock (core
CaptureClock), so an input overflow shows as a gap in the stamps instead of being hidden.

The PortAudio callback only copies the block and its stamp into a bounded queue (it never calls
rclpy); a publisher thread encodes and publishes. A missing or unplugged device, or settings the
device cannot do, are reported (log with the available inputs, /diagnostics ERROR) and retried
with backoff; the node stays up.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque

import numpy as np
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from std_msgs.msg import Header

from soundloc_ros.core.capture_clock import CaptureClock
from soundloc_ros.core.pcm import AudioStreamFormat
from soundloc_ros.ros.conversions import info_from_stream_format, numpy_to_audio
from soundloc_ros.ros.localizer_node import LATCHED
from soundloc_ros.ros.node_runtime import diagnostic_array, diagnostic_status, run

DTYPES = {"S16LE": "int16", "S32LE": "int32", "F32LE": "float32"}
PARAMETERS = {
    "device": ("", "input device: index, or (part of) its name; empty = the default input"),
    "sample_rate": (16000, "Hz (the device must support it)"),
    "channels": (1, "interleaved channels"),
    "block_size": (320, "samples per chunk (320 at 16 kHz = 20 ms)"),
    "sample_format": ("S16LE", "S16LE, S32LE or F32LE"),
    "latency": ("low", "PortAudio input latency: low or high (PulseAudio needs high)"),
    "frame_id": ("microphone", "frame_id of the published headers"),
    "max_retry_s": (30.0, "longest wait between attempts to open the device"),
    "stall_timeout_s": (1.0, "no audio for this long: the device is reopened"),
}


def resolve_device(sd, wanted: str) -> int | None:
    """The input device index for a parameter value (None = PortAudio's default input)."""
    if wanted == "":
        return None
    inputs = [(i, d["name"]) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"]]
    if wanted.isdigit():
        if int(wanted) in (i for i, _ in inputs):
            return int(wanted)
    else:
        matches = [i for i, name in inputs if wanted.lower() in name.lower()]
        if matches:
            return matches[0]
    listing = "; ".join(f"{i}: {name}" for i, name in inputs) or "none"
    raise ValueError(f"no input device matches {wanted!r}; inputs: {listing}")


class CaptureNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("soundloc_capture", **kwargs)
        for name, (default, text) in PARAMETERS.items():
            # device: an index (device:=2 arrives as an integer from the command line, a launch
            # file or YAML) or part of a name
            descriptor = ParameterDescriptor(
                description=text, read_only=True, dynamic_typing=name == "device"
            )
            self.declare_parameter(name, default, descriptor)
        self.format = AudioStreamFormat(
            sample_rate=self.param("sample_rate"),
            channels=self.param("channels"),
            sample_format=self.param("sample_format"),
        )
        self.audio_pub = self.create_publisher(AudioDataStamped, "audio_stamped", 100)
        self.unstamped_pub = self.create_publisher(AudioData, "audio", 100)
        self.info_pub = self.create_publisher(AudioInfo, "audio_info", LATCHED)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 5)
        self.create_timer(1.0, self._publish_diagnostics)
        self.counts: Counter[str] = Counter()
        self.stamp_steps: deque[float] = deque(maxlen=500)
        self.error = ""
        self.device_name = ""
        self._blocks: queue.Queue = queue.Queue(maxsize=200)  # about 4 s of 20 ms chunks
        self._stamps = CaptureClock()
        self._stream = None
        self._retry_s = 1.0
        self._last_block = time.monotonic()
        self._may_rescan = True
        self._running = True
        self._publisher = threading.Thread(target=self._publish_loop, daemon=True)
        self._publisher.start()
        self._retry_timer = self.create_timer(0.01, self._open)  # first attempt right away

    def param(self, name: str):
        return self.get_parameter(name).value

    # --- device ---
    def _open(self) -> None:
        self.destroy_timer(self._retry_timer)
        try:
            import sounddevice as sd
        except OSError as error:  # libportaudio2 missing
            self._fail(f"PortAudio is not available ({error}); apt install libportaudio2")
            return
        if self._may_rescan and self.counts["open_failures"]:  # a device may be back by now
            sd._terminate()
            sd._initialize()
        try:
            if self.format.sample_format not in DTYPES:
                raise ValueError(f"sample_format must be one of {', '.join(DTYPES)}")
            device = resolve_device(sd, str(self.param("device")))
            dtype = DTYPES[self.format.sample_format]
            sd.check_input_settings(
                device, self.format.channels, dtype, None, self.format.sample_rate
            )
            self._stream = sd.InputStream(
                device=device,
                samplerate=self.format.sample_rate,
                channels=self.format.channels,
                dtype=dtype,
                blocksize=self.param("block_size"),
                latency=self.param("latency"),
                callback=self._on_block,
                finished_callback=self._on_stream_end,
            )
            self._stream.start()
        except (ValueError, sd.PortAudioError) as error:
            self._fail(f"cannot open the microphone: {error}")
            return
        self.device_name = sd.query_devices(self._stream.device)["name"]
        host_api = sd.query_hostapis(sd.query_devices(self._stream.device)["hostapi"])["name"]
        # PortAudio aborts when re-initialized after its JACK server died: with JACK, a
        # restarted server needs a restarted node (capture.launch.py respawns it)
        self._may_rescan = self._may_rescan and "JACK" not in host_api
        self.error, self._retry_s = "", 1.0
        self._last_block = time.monotonic()
        self.info_pub.publish(info_from_stream_format(self.format))
        self.get_logger().info(
            f"capturing {self.device_name}: {self.format.sample_rate} Hz, {self.format.channels} "
            f"ch, {self.format.sample_format}, {self.param('block_size')}-sample chunks"
        )

    def _fail(self, message: str) -> None:
        self.error = message
        self.counts["open_failures"] += 1
        self.get_logger().error(f"{message} (retrying in {self._retry_s:.0f} s)")
        self._retry_timer = self.create_timer(self._retry_s, self._open)
        self._retry_s = min(2 * self._retry_s, self.param("max_retry_s"))

    def _on_stream_end(self) -> None:
        """PortAudio thread: the stream stopped (device unplugged, or we closed it)."""
        if self._running and self._stream is not None:
            self._blocks.put("stream ended")  # the publisher thread schedules the reopening

    # --- PortAudio callback: copy and stamp, nothing else ---
    def _on_block(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        stamp = self._stamps.first_sample_stamp(
            time_info.inputBufferAdcTime,
            time_info.currentTime,
            time.time(),
            frames,
            self.format.sample_rate,
            self._stream.latency if self._stream is not None else 0.0,
        )
        self._last_block = time.monotonic()
        if status.input_overflow:
            self.counts["input_overflows"] += 1
        try:
            self._blocks.put_nowait((stamp, indata.copy()))
        except queue.Full:
            self.counts["queue_full_drops"] += 1

    # --- publisher thread ---
    def _publish_loop(self) -> None:
        previous = None
        frame_id = self.param("frame_id")
        while self._running:
            try:
                item = self._blocks.get(timeout=0.1)
            except queue.Empty:
                stalled = time.monotonic() - self._last_block > self.param("stall_timeout_s")
                if self._stream is not None and stalled:
                    self.counts["stalls"] += 1
                    self._reopen(f"no audio from {self.device_name} for "
                                 f"{self.param('stall_timeout_s')} s (unplugged?)")  # fmt: skip
                continue
            if isinstance(item, str):
                self._reopen(f"the input stream of {self.device_name} ended ({item})")
                continue
            stamp, samples = item
            header = Header(frame_id=frame_id)
            header.stamp.sec = int(stamp)
            header.stamp.nanosec = int((stamp - int(stamp)) * 1e9)
            stamped = numpy_to_audio(samples, self.format, header)
            self.audio_pub.publish(stamped)
            if self.unstamped_pub.get_subscription_count() > 0:
                self.unstamped_pub.publish(stamped.audio)
            self.counts["chunks"] += 1
            if previous is not None:
                self.stamp_steps.append(stamp - previous)
            previous = stamp

    def _reopen(self, why: str) -> None:
        """Abandon the stream (closing one whose device vanished can block: done aside) and
        try again with backoff."""
        stream, self._stream = self._stream, None
        if stream is not None:
            threading.Thread(target=stream.close, args=(True,), daemon=True).start()
        self._fail(why)

    # --- diagnostics ---
    def diagnostics(self) -> DiagnosticStatus:
        nominal = self.param("block_size") / self.format.sample_rate
        steps = np.asarray(self.stamp_steps)
        values = {
            "device": self.device_name or "none",
            "format": f"{self.format.sample_rate} Hz {self.format.channels} ch "
            f"{self.format.sample_format}",
            **{k: str(v) for k, v in sorted(self.counts.items())},
        }
        if steps.size:
            values["stamp_step_mean_ms"] = f"{steps.mean() * 1e3:.3f} (nominal {nominal * 1e3:.3f})"
            values["stamp_jitter_std_ms"] = f"{steps.std() * 1e3:.3f}"
        if self.error:
            level, message = DiagnosticStatus.ERROR, self.error
        else:
            level, message = DiagnosticStatus.OK, "capturing"
        name = f"{self.get_fully_qualified_name()}: capture"  # diagnostic_updater with use_fqn
        return diagnostic_status(level, name, message, self.device_name, values)

    def _publish_diagnostics(self) -> None:
        self.diagnostics_pub.publish(diagnostic_array(self, self.diagnostics()))

    def destroy_node(self) -> None:
        self._running = False
        if self._stream is not None:  # bounded: a stream whose device vanished may not close
            closing = threading.Thread(target=self._stream.close, args=(True,), daemon=True)
            closing.start()
            closing.join(timeout=2.0)
        self._publisher.join(timeout=2.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run(CaptureNode, args)


if __name__ == "__main__":
    main()
