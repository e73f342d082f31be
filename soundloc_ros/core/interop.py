"""Which publishers on the node's input topics can never reach it, and what to do: no ROS here.

A subscription matches only publishers of its own type, so a camera that publishes
CompressedImage where the node reads Image, or a microphone driver's unstamped AudioData on
the stamped audio topic, is silently ignored by DDS. The node lists the publishers of each
input topic now and then (get_publishers_info_by_topic) and this module turns a wrong type into
one warning that names the type and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
STAMPED_AUDIO = "audio_common_msgs/msg/AudioDataStamped"
AUDIO = "audio_common_msgs/msg/AudioData"
COMPRESSED_SUFFIX = "/compressed"  # image_transport: <base topic>/compressed


def base_topic(topic: str) -> str:
    """image_transport's base of a transport topic (`/cam/image/compressed` -> `/cam/image`)."""
    return topic.removesuffix(COMPRESSED_SUFFIX)


def fix_for(topic: str, expected: str, offered: str) -> str:
    """What to do about a publisher of `offered` on `topic`, where the node reads `expected`."""
    if expected == IMAGE and offered == COMPRESSED:
        base = base_topic(topic)
        return (
            f"{topic} carries {COMPRESSED}, but the node reads raw {IMAGE} there: set "
            f"image_transport:=compressed and remap image:={base}, or decompress it with "
            f"`ros2 run image_transport republish compressed raw --ros-args -r in/compressed:="
            f"{topic} -r out:={base}/decompressed` and remap image:={base}/decompressed"
        )
    if expected == COMPRESSED and offered == IMAGE:
        return (
            f"{topic} carries raw {IMAGE}, but the node reads {COMPRESSED} there "
            f"(image_transport:=compressed): set image_transport:=raw and remap image:={topic}"
        )
    if expected == STAMPED_AUDIO and offered == AUDIO:
        stamped = topic.rpartition("/")[0] + "/audio_stamped"
        return (
            f"{topic} carries {AUDIO}, whose chunks have no timestamps and cannot be paired "
            f"with frames: remap audio_stamped to the driver's {STAMPED_AUDIO} topic (audio_"
            f"capture and soundloc_capture publish it on audio_stamped, e.g. audio_stamped:="
            f"{stamped})"
        )
    return f"{topic} carries {offered}, but the node reads {expected} there: remap the input"


def wrong_publishers(
    expected: Mapping[str, str], offered: Mapping[str, Iterable[str]]
) -> dict[tuple[str, str], str]:
    """{(topic, offered type): fix} for every publisher whose type the input cannot read.

    expected: input topic -> the type the node subscribes with; offered: topic -> the types of
    its publishers now (repeats allowed)."""
    found = {}
    for topic, wanted in expected.items():
        for msgtype in sorted(set(offered.get(topic, ()))):
            if msgtype != wanted:
                found[topic, msgtype] = fix_for(topic, wanted, msgtype)
    return found
