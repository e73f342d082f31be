"""vision_msgs/Detection2DArray, the detections output, has the layout of released vision_msgs 4.x.

Where the released package is missing, scripts/setup.sh builds interfaces/vision_msgs; a field
renamed, retyped or reordered there would make the node's detections unreadable to perception
consumers built against the real package, so the layout is checked here field by field.
"""

import json
from pathlib import Path

import pytest
import vision_msgs
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from vision_msgs.msg import (
    BoundingBox2D,
    BoundingBox2DArray,
    Detection2D,
    Detection2DArray,
    ObjectHypothesis,
    ObjectHypothesisWithPose,
    Point2D,
    Pose2D,
)

# ros-perception/vision_msgs 4.1.1 (branch ros2), vision_msgs/msg/*.msg, in declaration order.
RELEASED_LAYOUT = {
    Point2D: {"x": "double", "y": "double"},
    Pose2D: {"position": "vision_msgs/Point2D", "theta": "double"},
    BoundingBox2D: {"center": "vision_msgs/Pose2D", "size_x": "double", "size_y": "double"},
    BoundingBox2DArray: {
        "header": "std_msgs/Header",
        "boxes": "sequence<vision_msgs/BoundingBox2D>",
    },
    ObjectHypothesis: {"class_id": "string", "score": "double"},
    ObjectHypothesisWithPose: {
        "hypothesis": "vision_msgs/ObjectHypothesis",
        "pose": "geometry_msgs/PoseWithCovariance",
    },
    Detection2D: {
        "header": "std_msgs/Header",
        "results": "sequence<vision_msgs/ObjectHypothesisWithPose>",
        "bbox": "vision_msgs/BoundingBox2D",
        "id": "string",
    },
    Detection2DArray: {
        "header": "std_msgs/Header",
        "detections": "sequence<vision_msgs/Detection2D>",
    },
}


def test_each_message_has_the_released_fields_in_the_released_order():
    for msg_type, fields in RELEASED_LAYOUT.items():
        actual = msg_type.get_fields_and_field_types()
        assert list(actual.items()) == list(fields.items()), msg_type.__name__


def test_detection_array_survives_serialization_field_for_field():
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 1700000000, 250000000
    detection = Detection2D(header=header, id="source-0")
    detection.bbox.center.position.x = 123.5
    detection.bbox.center.position.y = 45.25
    detection.bbox.center.theta = 0.0
    detection.bbox.size_x = 64.0
    detection.bbox.size_y = 32.5
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = "sounding_object"
    hypothesis.hypothesis.score = 0.875
    hypothesis.pose.pose.position.x = 123.5
    hypothesis.pose.covariance[0] = 2.0
    detection.results.append(hypothesis)
    sent = Detection2DArray(header=header, detections=[detection])

    data = serialize_message(sent)
    received = deserialize_message(data, Detection2DArray)

    assert received == sent
    assert received.header.frame_id == "camera_optical"
    assert (received.header.stamp.sec, received.header.stamp.nanosec) == (1700000000, 250000000)
    assert len(received.detections) == 1
    got = received.detections[0]
    assert got.header == header
    assert got.id == "source-0"
    assert (got.bbox.center.position.x, got.bbox.center.position.y) == (123.5, 45.25)
    assert got.bbox.center.theta == 0.0
    assert (got.bbox.size_x, got.bbox.size_y) == (64.0, 32.5)
    assert len(got.results) == 1
    assert got.results[0].hypothesis.class_id == "sounding_object"
    assert got.results[0].hypothesis.score == 0.875
    assert got.results[0].pose.pose.position.x == 123.5
    assert got.results[0].pose.covariance[0] == 2.0
    assert len(got.results[0].pose.covariance) == 36


# RIHS01 type hashes (REP 2011) of the messages generated from upstream 4.1.1's own .msg files
# against Jazzy's std_msgs and geometry_msgs; comments do not enter the hash, fields do, with the
# fields of every nested type. Peers on Jazzy compare these hashes, and rosbag2 records them.
RELEASED_TYPE_HASHES = {
    "Detection2DArray": "RIHS01_214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968",
    "Detection2D": "RIHS01_0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea",
    "BoundingBox2D": "RIHS01_008eacbb0cf8f26e83795547bed013eec3675485ef386ec056d80eaaf1c1ce2f",
}


def test_type_hashes_equal_those_of_the_released_definitions():
    # <prefix>/lib/pythonX.Y/site-packages/vision_msgs -> <prefix>/share/vision_msgs
    prefix = Path(vision_msgs.__file__).resolve().parents[4]
    for name, expected in RELEASED_TYPE_HASHES.items():
        description = prefix / "share" / "vision_msgs" / "msg" / f"{name}.json"
        if not description.is_file():
            pytest.skip(f"no type description at {description} (a distribution before Jazzy)")
        hashes = json.loads(description.read_text())["type_hashes"]
        assert hashes[0]["type_name"] == f"vision_msgs/msg/{name}"
        assert hashes[0]["hash_string"] == expected, name
