"""Encoders and the localizer they form."""
