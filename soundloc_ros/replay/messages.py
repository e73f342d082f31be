"""Message types for reading and writing bags with `rosbags` (no ROS installation needed).

The sensor_msgs/std_msgs types come with rosbags' Jazzy typestore; audio_common_msgs (the
ros-drivers/audio_common definitions, field for field) are registered from their .msg text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

AUDIO_COMMON_MSGS = {
    "audio_common_msgs/msg/AudioData": "uint8[] data\n",
    "audio_common_msgs/msg/AudioDataStamped": (
        "std_msgs/Header header\naudio_common_msgs/AudioData audio\n"
    ),
    "audio_common_msgs/msg/AudioInfo": (
        "uint8 channels\nuint32 sample_rate\nstring sample_format\nuint32 bitrate\n"
        "string coding_format\n"
    ),
}


@dataclass(frozen=True)
class BagTopics:
    """Topic names of a soundloc bag (override them for bags recorded elsewhere)."""

    image: str = "/camera/image_raw"
    camera_info: str = "/camera/camera_info"
    audio: str = "/audio/audio_stamped"  # audio_capture and soundloc_capture under /audio
    audio_info: str = "/audio/audio_info"
    ground_truth: str = "/ground_truth/mask"  # mono8 masks, stamped like their frames


# Beside each ground-truth mask, at the same bag time: std_msgs/String "positive/<class>" or
# "negative/<kind>". Not a BagTopics field: ingested datasets record BagTopics as their settings.
LABEL_TOPIC = "/ground_truth/label"


@functools.cache
def typestore():
    """The Jazzy typestore with audio_common_msgs registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for name, text in AUDIO_COMMON_MSGS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store
