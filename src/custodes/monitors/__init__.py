"""Monitors: detectors for vulnerability discoveries and coup-relevant misuse, transcript
scanning, fingerprints, and the review queue with separation of duties.

Entry points: :func:`default_registry` (built-in detectors), :class:`ReviewQueue`,
:class:`TranscriptScanner`, :func:`compute_metrics`; the CLI's ``custodes monitors``,
``custodes scan`` and ``custodes review``.
"""

from custodes.monitors._calibration import CALIBRATION_FILE, Calibration
from custodes.monitors._combined import CombinedDetector, load_calibration
from custodes.monitors._dask_scan import DaskScan, ScanSource, ShardResult, is_url, scan_sources
from custodes.monitors._datasets import Example, messages_to_text, read_dataset
from custodes.monitors._detector import Category, Detection, Detector, Span
from custodes.monitors._directory import ConstitutionDirectory, Directory, StaticDirectory
from custodes.monitors._errors import ReviewConflict, SeparationOfDutiesError
from custodes.monitors._fingerprint import CrashFingerprint, crash_fingerprint, poc_hash
from custodes.monitors._judge import (
    RUBRICS,
    JudgeAnswer,
    JudgeCalibration,
    JudgedDetector,
    JudgeSettings,
    JudgeStats,
    ModelJudge,
    calibrate_judge,
    fit_judge_calibration,
    judge_messages,
    register_judge,
)
from custodes.monitors._learned import WEIGHTS_FILE, Encoder, LearnedDetector
from custodes.monitors._metrics import Confusion, Metrics, compute_metrics
from custodes.monitors._registry import DetectorRegistry, default_registry
from custodes.monitors._review import ReviewQueue, StoredDetection
from custodes.monitors._scan import ScanProblem, ScanSummary, TranscriptScanner, expand_paths
from custodes.monitors._service import MonitorsService, start_monitors
from custodes.monitors._train import fit_combination, rules_scores, train_heads
from custodes.monitors._transcripts import Format, Record, detect_format, read_records
from custodes.monitors._vuln import VulnDiscoveryDetector

__all__ = [
    "Category",
    "Confusion",
    "ConstitutionDirectory",
    "CrashFingerprint",
    "Detection",
    "Detector",
    "DetectorRegistry",
    "Directory",
    "Example",
    "Metrics",
    "MonitorsService",
    "ReviewConflict",
    "ReviewQueue",
    "ScanProblem",
    "ScanSummary",
    "SeparationOfDutiesError",
    "Span",
    "StaticDirectory",
    "StoredDetection",
    "TranscriptScanner",
    "compute_metrics",
    "crash_fingerprint",
    "default_registry",
    "messages_to_text",
    "poc_hash",
    "read_dataset",
    "start_monitors",
    "CALIBRATION_FILE",
    "Calibration",
    "CombinedDetector",
    "DaskScan",
    "ScanSource",
    "ShardResult",
    "is_url",
    "scan_sources",
    "Encoder",
    "Format",
    "LearnedDetector",
    "Record",
    "WEIGHTS_FILE",
    "detect_format",
    "expand_paths",
    "fit_combination",
    "load_calibration",
    "read_records",
    "rules_scores",
    "train_heads",
    "VulnDiscoveryDetector",
    "RUBRICS",
    "JudgeAnswer",
    "JudgeCalibration",
    "JudgeStats",
    "JudgedDetector",
    "JudgeSettings",
    "ModelJudge",
    "calibrate_judge",
    "fit_judge_calibration",
    "judge_messages",
    "register_judge",
]
