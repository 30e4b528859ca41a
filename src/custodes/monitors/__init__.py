"""Monitors: detectors for vulnerability discoveries and coup-relevant misuse."""

from custodes.monitors._detector import Category, Detection, Detector, Span

__all__ = ["Category", "Detection", "Detector", "Span"]
