"""Publishers of the wrong type on an input topic: named with their fix."""

from soundloc_ros.core.interop import (
    AUDIO,
    COMPRESSED,
    IMAGE,
    STAMPED_AUDIO,
    base_topic,
    wrong_publishers,
)


def test_a_compressed_camera_on_the_raw_topic_gets_both_fixes():
    found = wrong_publishers({"/cam/image_raw/compressed": IMAGE},
                             {"/cam/image_raw/compressed": [COMPRESSED, COMPRESSED]})  # fmt: skip
    assert list(found) == [("/cam/image_raw/compressed", COMPRESSED)]
    fix = found["/cam/image_raw/compressed", COMPRESSED]
    assert "image_transport:=compressed and remap image:=/cam/image_raw," in fix
    assert (
        "ros2 run image_transport republish compressed raw --ros-args "
        "-r in/compressed:=/cam/image_raw/compressed -r out:=/cam/image_raw/decompressed" in fix
    )


def test_unstamped_audio_points_at_audio_stamped():
    found = wrong_publishers({"/audio/audio": STAMPED_AUDIO}, {"/audio/audio": [AUDIO]})
    fix = found["/audio/audio", AUDIO]
    assert "no timestamps" in fix and "audio_stamped:=/audio/audio_stamped" in fix


def test_raw_images_on_the_compressed_topic_say_image_transport_raw():
    found = wrong_publishers({"/cam/image_raw/compressed": COMPRESSED},
                             {"/cam/image_raw/compressed": [IMAGE]})  # fmt: skip
    assert "set image_transport:=raw" in found["/cam/image_raw/compressed", IMAGE]


def test_right_types_and_silent_topics_give_nothing():
    expected = {"/image": IMAGE, "/audio_stamped": STAMPED_AUDIO}
    assert wrong_publishers(expected, {"/image": [IMAGE], "/other": [AUDIO]}) == {}
    found = wrong_publishers(expected, {"/image": ["std_msgs/msg/String", IMAGE]})
    assert found == {("/image", "std_msgs/msg/String"): "/image carries std_msgs/msg/String, "
                     "but the node reads sensor_msgs/msg/Image there: remap the input"}  # fmt: skip


def test_the_base_topic_drops_only_the_transport_suffix():
    assert base_topic("/cam/image_raw/compressed") == "/cam/image_raw"
    assert base_topic("/cam/compressed_image") == "/cam/compressed_image"
