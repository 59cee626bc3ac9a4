"""Encoders, thumbnails and editor interchange. No Qt, no torch."""
