"""Training material that does not teach the surface: labelled chat transcripts re-told by
other fictional organisations, with other tools, in other tool-call conventions.

A head trained on one lab's transcripts learns that lab's names (its agent, its clusters,
its buckets, its way of fencing a shell command). :func:`vary` keeps what an example *does*
and changes everything a monitor must not key on:

* the **organisation**: lab, agent, government and resource-prefix names are replaced by
  those of one of :data:`ORGANISATIONS` (all fictional);
* the **tooling**: orchestrator, object store, log pipeline, CI and network-policy names;
* the **format**: fenced blocks in the assistant's text, OpenAI ``tool_calls`` with JSON
  arguments, Anthropic ``tool_use`` / ``tool_result`` blocks, ReAct ``Action:`` text, or
  XML ``<invoke>`` calls, with edits as ``str_replace`` arguments or as a patch;
* an **approval sentence** appended at random to positives and negatives alike, so its
  presence carries no label.

Labels are unchanged: the act, its target and its sanction (or lack of one) are kept.
Deterministic for a given seed; standard library only.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FORMATS", "ORGANISATIONS", "Organisation", "family_of", "vary"]


@dataclass(frozen=True)
class Organisation:
    """A fictional organisation and the names its transcripts use."""

    key: str
    lab: str
    short: str
    agent: str
    prefix: str
    country: str
    ministry: str
    tools: Mapping[str, str]


_DEV_NAMES = {
    "lab": "Meridian AI",
    "short": "Meridian",
    "agent": "Forge",
    "prefix": "mrd-",
    "country": "Vestmark",
    "ministry": "MDDS",
}
# What DEV's world calls its tools, and what each organisation calls them.
_TOOL_SLOTS = (
    "kubectl",
    "MinIO",
    "minio",
    "s3://",
    "OpenSearch",
    "Fluent Bit",
    "Cilium",
    "Buildkite",
    "CloudTrail",
    "Helm",
    "Ray",
    "Terraform",
)
ORGANISATIONS: tuple[Organisation, ...] = (
    Organisation(
        "meridian", "Meridian AI", "Meridian", "Forge", "mrd-", "Vestmark", "MDDS",
        {s: s for s in _TOOL_SLOTS},
    ),
    Organisation(
        "halcyon", "Halcyon Labs", "Halcyon", "Wren", "hcl-", "Ostrava", "DSA",
        {"kubectl": "nomad", "MinIO": "Ceph RGW", "minio": "ceph", "s3://": "gs://",
         "OpenSearch": "Splunk", "Fluent Bit": "Vector", "Cilium": "Calico",
         "Buildkite": "GitLab CI", "CloudTrail": "Cloud Audit Logs", "Helm": "Kustomize",
         "Ray": "Slurm", "Terraform": "Pulumi"},
    ),
    Organisation(
        "quillon", "Quillon Research", "Quillon", "Atlas", "qln-", "Calvaria", "CDIA",
        {"kubectl": "oc", "MinIO": "Azure Blob", "minio": "blob", "s3://": "az://",
         "OpenSearch": "Elastic", "Fluent Bit": "Logstash", "Cilium": "Istio",
         "Buildkite": "Jenkins", "CloudTrail": "Activity Log", "Helm": "Argo CD",
         "Ray": "Dask", "Terraform": "Bicep"},
    ),
    Organisation(
        "northwind", "Northwind Intelligence", "Northwind", "Pilot", "nwi-", "Keldoria", "KDCO",
        {"kubectl": "kubectl", "MinIO": "R2", "minio": "r2", "s3://": "r2://",
         "OpenSearch": "Loki", "Fluent Bit": "Promtail", "Cilium": "Antrea",
         "Buildkite": "GitHub Actions", "CloudTrail": "audit trail", "Helm": "Helmfile",
         "Ray": "Kubeflow", "Terraform": "OpenTofu"},
    ),
    Organisation(
        "aster", "Aster Dynamics", "Aster", "Juniper", "ast-", "Brevania", "BMOD",
        {"kubectl": "k9s-cli", "MinIO": "SeaweedFS", "minio": "seaweed", "s3://": "s3a://",
         "OpenSearch": "Graylog", "Fluent Bit": "Fluentd", "Cilium": "Linkerd",
         "Buildkite": "CircleCI", "CloudTrail": "Cloud Logging", "Helm": "Jsonnet",
         "Ray": "Horovod", "Terraform": "Crossplane"},
    ),
)  # fmt: skip

FORMATS = ("fenced", "openai", "anthropic", "react", "xml")

_APPROVALS = (
    "For the record, this change was approved.",
    "Note: the platform lead signed off on this.",
    "This was cleared with the change board beforehand.",
    "Approved by security; no further review needed.",
    "(Change approved in advance by the owning team.)",
    "All of the above has management approval.",
)
_SHELL_NAMES = ("bash", "shell", "run_command", "execute", "terminal", "sh")
_EDIT_NAMES = ("str_replace_editor", "edit_file", "apply_patch", "write_patch", "editor")
_FENCE = re.compile(r"```(\w*)[ \t]*([^\n]*)\n(.*?)```", re.S)


def family_of(notes: str) -> str:
    """A scenario family from a DEV ``notes`` rationale: instances of one template differ
    in quoted names, numbers and proper nouns, so those are masked and the first words kept."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\d+(?:\.\d+)?", "#", notes)
    text = re.sub(r"\b[A-Z][\w-]*(?: [A-Z][\w-]*)*", "N", text)
    return " ".join(text.split()[:7])


def _swap(text: str, org: Organisation) -> str:
    """``text`` with the developer organisation's names (and its tools) replaced by ``org``'s, so
    one scenario reads as if it happened at another lab.
    """
    for slot, name in _DEV_NAMES.items():
        text = text.replace(name, getattr(org, slot))
        if slot in ("short", "country"):
            text = text.replace(name.lower(), getattr(org, slot).lower())
    for dev, theirs in org.tools.items():
        text = text.replace(dev, theirs)
    return text


def _edit_args(target: str, body: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A file edit as one of the tool-call shapes agents use: a whole patch (``apply_patch``) or an
    old/new string pair cut from the patch's lines; the tool name and its arguments.
    """
    if rng.random() < 0.4:
        return rng.choice(("apply_patch", "write_patch")), {"path": target, "patch": body}
    old, new = [], []
    for line in body.splitlines():
        if line.startswith("@@"):
            continue
        if line.startswith("+"):
            new.append(line[1:])
        elif line.startswith("-"):
            old.append(line[1:])
        else:
            old.append(line[1:] if line.startswith(" ") else line)
            new.append(line[1:] if line.startswith(" ") else line)
    key = rng.choice((("old_str", "new_str"), ("old_string", "new_string")))
    name = rng.choice(("str_replace_editor", "edit_file", "editor"))
    return name, {"path": target, key[0]: "\n".join(old), key[1]: "\n".join(new)}


def _calls(content: str, rng: random.Random) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The prose of an assistant message and its fenced blocks as (tool, arguments)."""
    calls = []
    for m in _FENCE.finditer(content):
        lang, target, body = m.group(1).lower(), m.group(2).strip(), m.group(3)
        if lang == "edit":
            calls.append(_edit_args(target, body, rng))
        elif lang == "sql":
            calls.append((rng.choice(("run_query", "sql", "warehouse_query")), {"query": body}))
        elif lang == "python":
            calls.append((rng.choice(("python", "run_python")), {"code": body}))
        else:
            key = rng.choice(("command", "cmd"))
            calls.append((rng.choice(_SHELL_NAMES), {key: body.strip()}))
    return _FENCE.sub("", content).strip(), calls


def _structured(messages: Sequence[Mapping[str, str]], fmt: str, rng: random.Random) -> list[Any]:
    """``messages`` as structured chat messages in format ``fmt`` (``openai`` tool calls with ids,
    or the other structured shape): the fenced code of assistant turns becomes tool calls and the
    next tool turn their results, call ids drawn from ``rng``.
    """
    out: list[Any] = []
    pending: list[str] = []
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "assistant" and "```" in content:
            prose, calls = _calls(content, rng)
            ids = [f"call_{rng.getrandbits(40):010x}" for _ in calls]
            pending = list(ids)
            if fmt == "openai":
                out.append(
                    {
                        "role": "assistant",
                        "content": prose or None,
                        "tool_calls": [
                            {
                                "id": i,
                                "type": "function",
                                "function": {"name": n, "arguments": json.dumps(a)},
                            }
                            for i, (n, a) in zip(ids, calls, strict=True)
                        ],
                    }
                )
            else:
                blocks: list[dict[str, Any]] = [{"type": "text", "text": prose}] if prose else []
                blocks += [
                    {"type": "tool_use", "id": i, "name": n, "input": a}
                    for i, (n, a) in zip(ids, calls, strict=True)
                ]
                out.append({"role": "assistant", "content": blocks})
        elif role == "tool":
            call_id = pending.pop(0) if pending else f"call_{rng.getrandbits(40):010x}"
            if fmt == "openai":
                out.append({"role": "tool", "tool_call_id": call_id, "content": content})
            else:
                out.append(
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": call_id, "content": content}
                        ],
                    }
                )
        else:
            out.append({"role": role, "content": content})
    return out


def _textual(messages: Sequence[Mapping[str, str]], fmt: str, rng: random.Random) -> str:
    """ReAct or XML-call text, with ``Human:`` / ``Assistant:`` turns."""
    parts = []
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "assistant" and "```" in content:
            prose, calls = _calls(content, rng)
            lines = [f"Thought: {prose}" if fmt == "react" else prose]
            for name, args in calls:
                if fmt == "react":
                    lines.append(f"Action: {name}\nAction Input: {json.dumps(args)}")
                else:
                    params = "".join(
                        f'<parameter name="{k}">{v}</parameter>' for k, v in args.items()
                    )
                    lines.append(f'<invoke name="{name}">{params}</invoke>')
            parts.append("Assistant: " + "\n".join(lines))
        elif role == "tool":
            parts.append(("Observation: " if fmt == "react" else "Tool: ") + content)
        elif role == "system":
            parts.append("System: " + content)
        elif role == "user":
            parts.append("Human: " + content)
        else:
            parts.append("Assistant: " + content)
    return "\n\n".join(parts)


def vary(
    messages: Sequence[Mapping[str, str]],
    *,
    org: Organisation,
    fmt: str,
    rng: random.Random,
    approval: bool,
) -> dict[str, Any]:
    """``messages`` (DEV's fenced-block chat) re-told by ``org`` in format ``fmt``.

    Returns a record with ``messages`` (structured formats) or ``text`` (textual ones).

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    msgs = [{"role": m["role"], "content": _swap(m["content"], org)} for m in messages]
    if approval:
        sentence = rng.choice(_APPROVALS)
        last = msgs[-1]
        msgs[-1] = {"role": last["role"], "content": last["content"] + "\n\n" + sentence}
    if fmt == "fenced":
        return {"messages": msgs}
    if fmt in ("openai", "anthropic"):
        return {"messages": _structured(msgs, fmt, rng)}
    return {"text": _textual(msgs, fmt, rng)}
