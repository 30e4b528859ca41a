"""The detector registry: built-in detectors and plug-ins register under a unique name."""

from __future__ import annotations

import threading
from collections.abc import Callable

from custodes.errors import InputError, NotFoundError
from custodes.monitors._detector import Detector

__all__ = ["DetectorRegistry", "default_registry"]

DetectorFactory = Callable[[], Detector]


class DetectorRegistry:
    """Names to detector factories; detectors are built once, on first use, and shared."""

    def __init__(self) -> None:
        self._factories: dict[str, DetectorFactory] = {}
        self._built: dict[str, Detector] = {}
        # Re-entrant: a factory (the combined detector) may get the detectors it is built on.
        self._lock = threading.RLock()

    def register(self, name: str, factory: DetectorFactory) -> None:
        """Register ``factory`` under ``name``.

        Raises:
            InputError: the name is already taken.
        """
        with self._lock:
            if name in self._factories:
                raise InputError(
                    f"detector {name!r} is already registered",
                    where="detector registry",
                    expected="a new name",
                    actual=name,
                )
            self._factories[name] = factory

    def names(self) -> list[str]:
        """Every registered detector name, sorted."""
        return sorted(self._factories)

    def get(self, name: str) -> Detector:
        """The detector registered as ``name``.

        Raises:
            NotFoundError: no such detector.
        """
        with self._lock:
            if name not in self._factories:
                raise NotFoundError(
                    f"no detector named {name!r} (known: {', '.join(sorted(self._factories))})"
                )
            if name not in self._built:
                self._built[name] = self._factories[name]()
            return self._built[name]


def _learned() -> Detector:
    from custodes.monitors._learned import LearnedDetector

    return LearnedDetector.load()


def _vuln() -> Detector:
    from custodes.monitors._vuln import VulnDiscoveryDetector

    return VulnDiscoveryDetector()


def _coup() -> Detector:
    from custodes.monitors._coup import CoupRulesDetector

    return CoupRulesDetector()


def _combined(registry: DetectorRegistry) -> DetectorFactory:
    """The factory of the combined detector over the registry's own rules and learned tiers
    (built at first use, with the packaged calibration)."""

    def build() -> Detector:
        from custodes.monitors._combined import CombinedDetector, load_calibration

        return CombinedDetector(
            [registry.get("vuln_rules"), registry.get("coup_rules")],
            registry.get("learned"),
            load_calibration(),
        )

    return build


def default_registry() -> DetectorRegistry:
    """A registry holding the built-in detectors (``learned`` and ``combined``, the
    calibrated combination of all tiers, need the ``learned`` extra)."""
    registry = DetectorRegistry()
    registry.register("vuln_rules", _vuln)
    registry.register("coup_rules", _coup)
    registry.register("learned", _learned)
    registry.register("combined", _combined(registry))
    return registry
