"""Offline training of the soundloc_ros localizer (PyTorch).

Uses `soundloc_ros.core` for the audio front-end, the metrics and the model-bundle format, so
what is trained here is exactly what the node runs.
"""
