"""A real-time virtual microphone for machines without a sound card: a JACK dummy server and a
tone generator client, which PortAudio (and so soundloc_capture) records like any input.

    python scripts/virtual_microphone.py --rate 16000 --seconds 30   # then run soundloc_capture
                                                                     # with JACK_DEFAULT_SERVER set

Used by the capture tests and benchmarks/capture_latency.py. Needs `jackd2` (Debian) and
JACK-Client (pip); both come with `make setup`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from contextlib import contextmanager, suppress

import numpy as np


@contextmanager
def jack_server(name: str, rate: int, period: int):
    """A JACK dummy-driver server; sets JACK_DEFAULT_SERVER so child processes use it."""
    if shutil.which("jackd") is None:
        raise RuntimeError("jackd is not installed: apt install jackd2 (make setup does)")
    env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"}
    process = subprocess.Popen(
        ["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period),
         "-C", "2", "-P", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        _wait_for_server(name, process)
        yield process
    finally:
        process.terminate()
        process.wait(10)
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous


def _wait_for_server(name: str, process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    import jack

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jackd exited: {process.stderr.read().decode(errors='replace')}")
        try:
            jack.Client("probe", servername=name, no_start_server=True).close()
            return
        except jack.JackError:
            time.sleep(0.1)
    raise RuntimeError(f"the JACK server {name!r} did not start within {timeout_s} s")


class ToneGenerator:
    """A JACK client playing a sine into every PortAudio input port it is connected to."""

    def __init__(self, server: str, frequency: float = 440.0, amplitude: float = 0.5) -> None:
        import jack

        self.client = jack.Client("tonegen", servername=server, no_start_server=True)
        self.port = self.client.outports.register("out")
        self.frequency, self.amplitude, self._sample = frequency, amplitude, 0
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        n = np.arange(self._sample, self._sample + frames)
        phase = 2 * np.pi * self.frequency * n / self.client.samplerate
        self.port.get_array()[:] = self.amplitude * np.sin(phase)
        self._sample += frames

    def connect_to_recorders(self, timeout_s: float = 10.0) -> list[str]:
        """Connect to every PortAudio input port once one exists (a recorder opened a stream)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ports = [
                p for p in self.client.get_ports(is_input=True, is_audio=True)
                if not p.name.startswith("system:")
            ]  # fmt: skip
            if ports:
                for port in ports:
                    if port.name not in {
                        c.name for c in self.client.get_all_connections(self.port)
                    }:
                        self.client.connect(self.port, port)
                return [p.name for p in ports]
            time.sleep(0.05)
        raise RuntimeError("no recorder opened a JACK input within the timeout")

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="soundloc_vmic")
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--period", type=int, default=320)
    parser.add_argument("--frequency", type=float, default=440.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with jack_server(args.name, args.rate, args.period):
        tone = ToneGenerator(args.name, args.frequency)
        print(
            f"JACK server {args.name!r} at {args.rate} Hz; export JACK_DEFAULT_SERVER={args.name}"
        )
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            with suppress(RuntimeError):  # no recorder yet
                tone.connect_to_recorders(timeout_s=1.0)
            time.sleep(0.5)
        tone.close()


if __name__ == "__main__":
    main()
