"""Transcript readers: OpenAI chat JSONL, Claude Code session JSONL, Inspect AI eval logs
(``.json`` and ``.eval`` zip), and plain text. Each yields records with the byte offset just
after them, so a scan can resume; malformed records come back as problems, never exceptions.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from custodes.monitors._datasets import messages_to_text
from custodes.monitors._view import _block_text, _message_calls

__all__ = ["Format", "Record", "detect_format", "read_records"]

Format = Literal["openai-jsonl", "claude-code-jsonl", "inspect-json", "inspect-eval", "text"]

TEXT_BLOCK_BYTES = 256 * 1024  # plain text is scanned in blocks cut at line ends


@dataclass(frozen=True)
class Record:
    """One unit of transcript: ``text`` to scan, or ``problem`` if it was malformed.

    ``line`` is the 1-based line (or sample number) where it starts; ``end_offset`` the byte
    offset just after it (``None`` for records inside a zip, which resume per file).
    ``label`` names it for reports (a JSONL record's ``id``, an Inspect sample's file name).
    """

    line: int
    end_offset: int | None
    text: str = ""
    problem: str | None = None
    label: str = ""


def detect_format(path: Path) -> Format:
    """Guess the format from the name and the first non-empty line."""
    suffix = path.suffix.lower()
    if suffix == ".eval":
        return "inspect-eval"
    if suffix == ".json":
        return "inspect-json"
    if suffix == ".jsonl":
        with path.open("rb") as fh:
            return jsonl_format(fh)
    return "text"


def jsonl_format(fh: BinaryIO) -> Format:
    """Which JSONL dialect ``fh`` (open at its start) holds, from its first non-empty line."""
    for raw in fh:
        if not raw.strip():
            continue
        try:
            first = json.loads(raw)
        except ValueError:
            return "openai-jsonl"  # the reader reports the bad line
        if isinstance(first, dict) and (
            "sessionId" in first
            or ("type" in first and "message" in first)
            or first.get("type") in ("summary", "file-history-snapshot")
        ):
            return "claude-code-jsonl"
        return "openai-jsonl"
    return "openai-jsonl"


def _content_text(content: Any) -> str:
    """Text of an Anthropic/OpenAI content value: a string or a list of typed blocks (tool
    calls rendered as ``[tool call NAME] {json}``, as :func:`render_messages` does)."""
    return _block_text(content)


def _openai_line(obj: Any) -> str:
    """The text of one OpenAI-format JSONL record: a chat (``messages``), a bare ``text``,
    or a single message.

    Raises:
        ValueError: the record is none of these (reported as that line's problem).
    """
    if isinstance(obj, dict):
        if isinstance(obj.get("messages"), list):
            msgs = [m if isinstance(m, dict) else {"content": m} for m in obj["messages"]]
            return messages_to_text(
                [
                    {
                        "role": m.get("role", "unknown"),
                        "content": _content_text(m.get("content")) + _tool_calls(m),
                    }
                    for m in msgs
                ]
            )
        if isinstance(obj.get("text"), str):
            return str(obj["text"])
        if "role" in obj and "content" in obj:
            return messages_to_text(
                [{"role": obj["role"], "content": _content_text(obj["content"])}]
            )
    raise ValueError("expected an object with 'messages' (OpenAI chat format) or 'text'")


def _tool_calls(message: dict[str, Any]) -> str:
    """A message's tool calls as ``[tool call NAME] {json}`` lines, to follow its content."""
    calls = _message_calls(message)
    return "".join("\n" + c for c in calls)


def _claude_line(obj: Any) -> str:
    """The text of one Claude Code session event (a message, or a session summary).

    Raises:
        ValueError: the line is not a JSON object.
    """
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object (Claude Code session event)")
    msg = obj.get("message")
    if isinstance(msg, dict):
        role = msg.get("role") or obj.get("type") or "unknown"
        return messages_to_text([{"role": role, "content": _content_text(msg.get("content"))}])
    if obj.get("type") == "summary":
        return str(obj.get("summary", ""))
    return ""  # snapshots and bookkeeping events carry no transcript text


def _jsonl(fh: BinaryIO, start_offset: int, start_line: int, fmt: Format) -> Iterator[Record]:
    """One record per non-blank line from ``start_offset``; a malformed line is a record with
    a problem, and the scan goes on (one bad line must not hide the rest of a transcript)."""
    parse = _claude_line if fmt == "claude-code-jsonl" else _openai_line
    offset, lineno = start_offset, start_line
    for raw in fh:
        lineno += 1
        offset += len(raw)
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            yield Record(lineno, offset, problem=f"not JSON: {exc}")
            continue
        try:
            text = parse(obj)
        except ValueError as exc:
            yield Record(lineno, offset, problem=str(exc))
            continue
        label = str(obj.get("id", "")) if isinstance(obj, dict) else ""
        yield Record(lineno, offset, text=text, label=label)


def text_block_cut(offset: int) -> int:
    """The offset at or after which the text block that starts at ``offset`` ends (at the
    next line end): the next multiple of :data:`TEXT_BLOCK_BYTES`.

    Blocks are cut at fixed positions in the file, not at a size counted from where a read
    began, so a reader that starts at any block end (a resumed scan, or a shard of a
    distributed scan that starts at the line end after a multiple of the block size) cuts
    the same blocks as one read from the start, and finds the same detections.
    """
    return (offset // TEXT_BLOCK_BYTES + 1) * TEXT_BLOCK_BYTES


def _text(fh: BinaryIO, start_offset: int, start_line: int) -> Iterator[Record]:
    """Plain text in blocks of about :data:`TEXT_BLOCK_BYTES`, cut at the first line end at
    or after each multiple of it (so a scan can resume after a block, and no detector is
    handed a whole log at once); undecodable bytes are replaced, not refused."""
    offset, lineno = start_offset, start_line
    buf: list[bytes] = []
    first, cut = lineno + 1, text_block_cut(offset)
    end = offset
    for raw in fh:
        lineno += 1
        buf.append(raw)
        end += len(raw)
        if end >= cut:
            offset = end
            yield Record(first, offset, text=b"".join(buf).decode("utf-8", "replace"))
            buf, first, cut = [], lineno + 1, text_block_cut(offset)
    if buf:
        yield Record(first, end, text=b"".join(buf).decode("utf-8", "replace"))


def _inspect_sample(sample: Any) -> str:
    """One Inspect sample's messages (and output) as transcript text, tool calls included.

    Raises:
        ValueError: the sample is not an object with a ``messages`` list.
    """
    if not isinstance(sample, dict):
        raise ValueError("a sample is not an object")
    messages = sample.get("messages")
    if not isinstance(messages, list):
        raise ValueError("a sample has no 'messages' list")
    parts = [
        {
            "role": m.get("role", "unknown"),
            "content": _content_text(m.get("content")) + _tool_calls(m),
        }
        for m in messages
        if isinstance(m, dict)
    ]
    out = sample.get("output")
    if isinstance(out, dict):
        for choice in out.get("choices") or []:
            if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                m = choice["message"]
                parts.append({"role": "assistant", "content": _content_text(m.get("content"))})
    return messages_to_text(parts)


def _inspect_eval(source: Path | BinaryIO) -> Iterator[Record]:
    """One record per sample of an Inspect ``.eval`` log (a zip, one JSON file per sample
    under ``samples/``; a path, or a seekable binary file such as an ``fsspec`` one); an
    unreadable archive or sample is a record with a problem."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Record(0, None, problem=f"not an Inspect .eval archive (zip): {exc}")
        return
    with archive:
        names = sorted(
            n for n in archive.namelist() if n.startswith("samples/") and n.endswith(".json")
        )
        if not names and "header.json" not in archive.namelist():
            yield Record(0, None, problem="zip has no samples/ and no header.json")
        for i, name in enumerate(names, 1):
            try:
                with archive.open(name) as fh:
                    sample = json.load(fh)
                text = _inspect_sample(sample)
            except (ValueError, KeyError, zipfile.BadZipFile) as exc:
                yield Record(i, None, problem=f"{name}: {exc}", label=name)
                continue
            yield Record(i, None, text=text, label=name)


def _inspect_json(source: Path | BinaryIO) -> Iterator[Record]:
    """The samples of an Inspect ``.json`` eval log, one record each (a malformed log or sample is a
    record with a problem, not an exception).
    """
    # Inspect writes .json logs as one document; it is parsed whole (use the .eval format,
    # which stores one sample per zip member, for logs too large for memory).
    try:
        if isinstance(source, Path):
            with source.open("rb") as fh:
                doc = json.load(fh)
        else:
            doc = json.load(source)
    except ValueError as exc:
        yield Record(0, None, problem=f"not JSON: {exc}")
        return
    samples = doc.get("samples") if isinstance(doc, dict) else None
    if not isinstance(samples, list):
        yield Record(0, None, problem="not an Inspect eval log: no 'samples' list")
        return
    for i, sample in enumerate(samples, 1):
        try:
            text = _inspect_sample(sample)
        except ValueError as exc:
            yield Record(i, None, problem=f"samples[{i - 1}]: {exc}")
            continue
        label = str(sample.get("id", "")) if isinstance(sample, dict) else ""
        yield Record(i, None, text=text, label=label)


def read_records(
    path: Path, fmt: Format, *, start_offset: int = 0, start_line: int = 0
) -> Iterator[Record]:
    """Records of ``path`` from ``start_offset`` (line-oriented formats only)."""
    if fmt == "inspect-eval":
        yield from _inspect_eval(path)
    elif fmt == "inspect-json":
        yield from _inspect_json(path)
    else:
        with path.open("rb") as fh:
            fh.seek(start_offset)
            if fmt == "text":
                yield from _text(fh, start_offset, start_line)
            else:
                yield from _jsonl(fh, start_offset, start_line, fmt)
