"""A constitution for the usage tests: the demo's, with AI workloads directed by its persons and
concentration rules on cyber-frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from custodes.constitution import Constitution, read_constitution

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["AGENTS", "usage_document", "usage_constitution"]

# alice@lab directs five agents; frank@cyberdef one; the orchestrator may be directed by alice
# or by grace, so its calls must name which; sub-agent@lab is directed by the orchestrator.
AGENTS = [f"agent-{i}@lab" for i in range(5)]


def usage_document(**usage: Any) -> dict[str, Any]:
    """The demo constitution's document plus workloads and a ``usage`` section."""
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "constitution.yaml").read_text())
    for agent in AGENTS:
        doc["principals"].append(
            {
                "id": agent,
                "organisation": "lab",
                "kind": "workload",
                "roles": ["researcher"],
                "attributes": {"clearance": "cyber"},
                "directed_by": ["alice@lab"],
            }
        )
    doc["principals"] += [
        {
            "id": "scanner@cyberdef",
            "organisation": "cyberdef",
            "kind": "workload",
            "roles": ["partner-researcher"],
            "attributes": {"clearance": "cyber"},
            "directed_by": ["frank@cyberdef"],
        },
        {
            "id": "orchestrator@lab",
            "organisation": "lab",
            "kind": "workload",
            "roles": ["researcher"],
            "attributes": {"clearance": "cyber"},
            "directed_by": ["alice@lab", "grace@bankcert"],
        },
        {
            "id": "sub-agent@lab",
            "organisation": "lab",
            "kind": "workload",
            "roles": ["researcher"],
            "attributes": {"clearance": "cyber"},
            "directed_by": ["orchestrator@lab"],
        },
    ]
    doc["usage"] = usage or {
        "rules": [
            {
                "id": "cyber-person-share",
                "kind": "max-person-share",
                "capability": "cyber-frontier",
                "measure": "tokens",
                "share": 0.4,
                "window": "7d",
                "gate": True,
                "min_calls": 4,
            },
            {
                "id": "cyber-breadth",
                "kind": "min-organisations",
                "capability": "cyber-frontier",
                "organisations": 3,
                "window": "30d",
            },
        ]
    }
    return doc


def usage_constitution(**usage: Any) -> Constitution:
    return read_constitution(yaml.safe_dump(usage_document(**usage), sort_keys=False))
