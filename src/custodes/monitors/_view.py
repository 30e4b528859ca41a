"""A format-independent view of a transcript: who acted, with which tool, on what target,
and what changed.

Detectors receive text, and transcripts arrive in many shapes: OpenAI ``tool_calls``,
Anthropic / Claude Code ``tool_use`` blocks, Inspect samples, ReAct ``Action:`` lines, XML
``<invoke>`` / ``<tool_call>`` conventions, fenced shell blocks, bare ``$`` prompts and
unified diffs pasted anywhere. :func:`render_messages` writes chat messages in one canonical
text form (``### ROLE`` blocks, tool calls as ``[tool call NAME] {json}``), and
:func:`transcript_view` reads any of these conventions back into :class:`Turn` and
:class:`Action` records, so that a detector scores *actions and objects* (an added config
line, a copy command and its destination) instead of one lab's tool names.

Limits: at most :data:`MAX_ACTIONS` actions and :data:`MAX_TURNS` turns are extracted per
text; JSON arguments are parsed only up to :data:`MAX_JSON_CHARS` characters each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Action",
    "Actor",
    "Turn",
    "View",
    "render_messages",
    "transcript_view",
]

Actor = Literal["system", "user", "agent", "tool", "unknown"]
ActionKind = Literal["shell", "edit", "query", "http", "message", "code", "other"]

# Bounds on what one text can make the view build: a hostile transcript (a million
# "user:" lines, one huge JSON argument) costs at most this much, and is still screened.
MAX_ACTIONS = 400
MAX_TURNS = 2000
MAX_JSON_CHARS = 200_000

# Role words as transcripts of different tools spell them (OpenAI, Anthropic, inspect_ai,
# ReAct logs, chat exports) -> who acted.
_ROLE_ACTOR: dict[str, Actor] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "operator": "user",
    "customer": "user",
    "assistant": "agent",
    "ai": "agent",
    "agent": "agent",
    "model": "agent",
    "bot": "agent",
    "gpt": "agent",
    "claude": "agent",
    "tool": "tool",
    "tool_result": "tool",
    "function": "tool",
    "ipython": "tool",
    "observation": "tool",
    "output": "tool",
    "result": "tool",
    "environment": "tool",
}


@dataclass(frozen=True)
class Turn:
    """One message: its actor, the role word the transcript used, and ``[start, end)``.

    Attributes:
        actor: who spoke.
        role: the role word as written, lower-cased.
        start: where the message's text starts (after its role marker).
        end: where it ends (the next turn's marker, or the end of the text).
    """

    actor: Actor
    role: str
    start: int
    end: int


@dataclass(frozen=True)
class Action:
    """One tool call (or command, or edit) made by ``actor``.

    ``tool`` is the tool's name as written (lower-cased), ``kind`` what sort of act it is,
    ``target`` the file, URL or resource it acts on, ``command`` the command or query text,
    ``added`` / ``removed`` the lines it writes or deletes (for edits and diffs).
    ``start`` / ``end`` locate it in the text; ``context`` holds the unchanged lines of a
    diff's hunks (what the change sits in).
    """

    actor: Actor
    tool: str
    kind: ActionKind
    target: str
    command: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    start: int
    end: int
    context: tuple[str, ...] = ()

    def unit_text(self) -> str:
        """The action as one line-oriented text: tool and target, command, changed lines."""
        parts = [f"{self.kind} {self.tool} {self.target}".strip()]
        if self.command:
            parts.append(self.command)
        parts.extend("+ " + line for line in self.added)
        parts.extend("- " + line for line in self.removed)
        parts.extend("  " + line for line in self.context)
        return "\n".join(parts)


@dataclass(frozen=True)
class View:
    """The turns and actions of one text.

    Attributes:
        text: the text viewed.
        turns: its messages, in order (empty when no role markers were recognised).
        actions: the tool calls, commands and edits found in it, in order.
    """

    text: str
    turns: tuple[Turn, ...]
    actions: tuple[Action, ...]

    def text_of(self, actor: Actor) -> str:
        """All text of ``actor``'s turns (the whole text when no turns were recognised and
        ``actor`` is ``unknown``)."""
        if not self.turns:
            return self.text if actor == "unknown" else ""
        return "\n".join(self.text[t.start : t.end] for t in self.turns if t.actor == actor)

    def last_agent_text(self) -> str:
        """The text of the agent's last turn ("" when the agent never spoke)."""
        for t in reversed(self.turns):
            if t.actor == "agent":
                return self.text[t.start : t.end]
        return ""


# --- rendering -------------------------------------------------------------------------------


def _block_text(content: Any) -> str:
    """Text of a content value: a string, or a list of typed blocks (OpenAI, Anthropic)."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, Mapping):
        content = [content]
    if not isinstance(content, list):
        return json.dumps(content, ensure_ascii=False)
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
            continue
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind in ("tool_use", "tool_call", "function_call", "server_tool_use"):
            name = block.get("name") or (block.get("function") or {}).get("name") or "?"
            args = block.get("input", block.get("arguments", block.get("args", {})))
            parts.append(_call_line(str(name), args))
        elif kind in ("tool_result", "function_call_output", "tool_response"):
            parts.append(_block_text(block.get("content", block.get("output", ""))))
        elif kind == "thinking":
            parts.append(str(block.get("thinking", "")))
        elif "text" in block or kind in ("text", "reasoning", "output_text", "input_text"):
            parts.append(str(block.get("text") or block.get("reasoning") or ""))
    return "\n".join(p for p in parts if p)


def _call_line(name: str, args: Any) -> str:
    """One tool call as a line of the transcript view: its name and its arguments as compact JSON
    (decoded first when they arrive as a JSON string).
    """
    if isinstance(args, str):
        try:
            args = json.loads(args) if len(args) <= MAX_JSON_CHARS else args
        except ValueError:
            pass
    body = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return f"[tool call {name}] {body}"


def _message_calls(message: Mapping[str, Any]) -> list[str]:
    """The tool calls of a chat message, in OpenAI (``tool_calls``), Anthropic-like (``input``) and
    legacy (``function_call``) shapes, as view lines.
    """
    out = []
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for c in calls:
            if not isinstance(c, Mapping):
                continue
            inner = c.get("function")
            fn: Mapping[str, Any] = inner if isinstance(inner, Mapping) else c
            out.append(
                _call_line(str(fn.get("name", "?")), fn.get("arguments", fn.get("input", "")))
            )
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        out.append(_call_line(str(legacy.get("name", "?")), legacy.get("arguments", "")))
    return out


def render_messages(messages: Iterable[Any]) -> str:
    """Chat messages as ``### ROLE`` blocks, tool calls as ``[tool call NAME] {json}``.

    Reads OpenAI (``content`` string or parts, ``tool_calls``, ``function_call``),
    Anthropic (``tool_use`` / ``tool_result`` / ``thinking`` blocks) and Inspect messages.
    """
    parts = []
    for m in messages:
        if not isinstance(m, Mapping):
            m = {"role": "unknown", "content": m}
        role = str(m.get("role") or m.get("type") or m.get("from") or "unknown")
        body = _block_text(m.get("content", m.get("text", m.get("value", ""))))
        calls = _message_calls(m)
        text = "\n".join(x for x in [body, *calls] if x)
        parts.append(f"### {role.upper()}\n{text}")
    return "\n\n".join(parts)


# --- reading ---------------------------------------------------------------------------------

_ROLE_WORDS = "|".join(sorted(_ROLE_ACTOR, key=len, reverse=True))
_TURN_RE = re.compile(
    rf"^(?:#{{2,4}} ?({_ROLE_WORDS})\b[^\n]*$"  # ### USER
    rf"|<\|im_start\|>\s*({_ROLE_WORDS})\b"  # ChatML
    rf"|\[({_ROLE_WORDS})\]:?"  # [USER]
    rf"|\*\*({_ROLE_WORDS}):?\*\*:?"  # **User:**
    rf"|<({_ROLE_WORDS})>)",  # <user>
    re.I | re.M,
)
# "Human:" / "Assistant:" at a line start; capitalised only, so that YAML keys such as
# "model: x" or "output: y" inside a tool result do not start turns.
_BARE_TURN_RE = re.compile(
    r"^(Human|Assistant|User|System|AI|Agent|Observation|Tool|Model|Bot|Developer|Operator"
    r"|HUMAN|ASSISTANT|USER|SYSTEM|AGENT|TOOL|OBSERVATION) ?:(?=\s)",
    re.M,
)
_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([^\n`]*)\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)
_CALL_RE = re.compile(r"\[tool call ([^\]\n]{1,80})\] ?")
_INVOKE_RE = re.compile(
    r"<invoke name=\"([^\"]{1,80})\">(.*?)</invoke>|<function=([\w.-]{1,80})>(.*?)</function>",
    re.S,
)
_PARAM_RE = re.compile(
    r"<parameter name=\"([^\"]{1,80})\">(.*?)</parameter>|<parameter=([\w.-]{1,80})>(.*?)"
    r"</parameter>",
    re.S,
)
_TAG_RE = re.compile(
    r"<(bash|shell|command|cmd|execute|terminal|python|code|sql|query|edit|patch|write_file)"
    r"(?:\s[^>]{0,200})?>(.*?)</\1>",
    re.S | re.I,
)
_JSON_CALL_RE = re.compile(r"(\{\s*\"(?:name|tool|tool_name|function|action|recipient_name)\"\s*:)")
_REACT_RE = re.compile(
    r"^\s*Action:\s*([\w.\-/]{1,80})\s*\n\s*Action[ _]Input:\s*(.*?)"
    r"(?=^\s*(?:Observation|Thought|Action|Final Answer)\s*:|\Z)",
    re.M | re.S,
)
_PROMPT_RE = re.compile(r"^(?:[\w.-]{1,40}@[\w.-]{1,60}:\S{0,120}[$#]|\$) ([^\n]{2,2000})$", re.M)
_DIFF_RE = re.compile(
    r"^(?:diff --git [^\n]+\n)?(?:---|\*\*\*) ([^\n]+)\n\+\+\+ ([^\n]+)\n((?:[+\- @\\][^\n]*\n?)+)",
    re.M,
)
_COMMAND_KEYS = ("command", "cmd", "commands", "script", "code", "input", "bash", "shell", "args")
_QUERY_KEYS = ("query", "sql", "statement", "q")
_TARGET_KEYS = (
    "path",
    "file_path",
    "file",
    "filename",
    "filepath",
    "target",
    "url",
    "uri",
    "resource",
    "bucket",
    "destination",
    "dest",
    "repo",
    "name",
)
_ADDED_KEYS = (
    "new_str",
    "new_string",
    "file_text",
    "content",
    "contents",
    "text",
    "insert",
    "insert_text",
    "replacement",
    "new_content",
    "new_text",
    "body",
    "data",
    "value",
)
_REMOVED_KEYS = ("old_str", "old_string", "old_content", "old_text", "search")
_DIFF_KEYS = ("patch", "diff", "unified_diff", "changes")

_EDIT_TOOLS = re.compile(r"edit|patch|write|replace|create|insert|apply|str_replace|diff", re.I)
_SHELL_TOOLS = re.compile(r"bash|shell|sh$|exec|terminal|run|cmd|command|computer|zsh", re.I)
_QUERY_TOOLS = re.compile(r"sql|query|warehouse|bigquery|athena|db", re.I)
_HTTP_TOOLS = re.compile(r"http|fetch|curl|request|browse|web|api", re.I)


def _kind(tool: str, has_changes: bool, has_command: bool) -> ActionKind:
    """What sort of act a call is, by its tool's name first, then by what its arguments
    hold (lines written and no command: an edit; a command: a shell)."""
    if _EDIT_TOOLS.search(tool) or (has_changes and not has_command):
        return "edit"
    if _QUERY_TOOLS.search(tool):
        return "query"
    if _SHELL_TOOLS.search(tool) or has_command:
        return "shell"
    if _HTTP_TOOLS.search(tool):
        return "http"
    if tool in ("", "text", "plain", "console", "output"):
        return "code"
    return "other"


def _diff_lines(body: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The added and removed lines of a unified diff (file headers left out)."""
    added, removed = [], []
    for line in body.splitlines():
        if line.startswith(("+++", "---")):
            continue
        if line.startswith("+"):
            added.append(line[1:].strip())
        elif line.startswith("-"):
            removed.append(line[1:].strip())
    return tuple(x for x in added if x), tuple(x for x in removed if x)


def _diff_context(body: str) -> tuple[str, ...]:
    """Unchanged lines of a hunk (and ``@@`` section headers): what the change sits in."""
    out = []
    for line in body.splitlines():
        if line.startswith("@@"):
            out.append(line.strip("@ ").strip())
        elif line.startswith(" "):
            out.append(line.strip())
    return tuple(x for x in out if x)


def _looks_like_diff(body: str) -> bool:
    """Whether ``body`` reads as a unified diff: a hunk or file header, or +/- lines."""
    return bool(re.search(r"^@@|^\+\+\+ |^[+-][^+-]", body, re.M)) and bool(
        re.search(r"^[+-]", body, re.M)
    )


def _flatten(value: Any) -> str:
    """An argument as text: a string as is, a list of strings joined (argv), else JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return json.dumps(value, ensure_ascii=False)


def _from_args(tool: str, args: Any, actor: Actor, start: int, end: int) -> Action:
    """An action from a tool's JSON arguments, whatever the tool calls its fields."""
    if not isinstance(args, Mapping):
        text = _flatten(args)
        if _looks_like_diff(text):
            add, rem = _diff_lines(text)
            return Action(actor, tool, "edit", "", "", add, rem, start, end)
        return Action(actor, tool, _kind(tool, False, True), "", text, (), (), start, end)
    lower = {str(k).lower(): v for k, v in args.items()}
    command = next((_flatten(lower[k]) for k in _COMMAND_KEYS if k in lower), "")
    query = next((_flatten(lower[k]) for k in _QUERY_KEYS if k in lower), "")
    target = next(
        (_flatten(lower[k]) for k in _TARGET_KEYS if k in lower and isinstance(lower[k], str)),
        "",
    )
    added: list[str] = []
    removed: list[str] = []
    for k in _DIFF_KEYS:
        if isinstance(lower.get(k), str):
            a, r = _diff_lines(lower[k])
            added.extend(a)
            removed.extend(r)
    for k in _ADDED_KEYS:
        if k in lower and k != "name":
            added.extend(x.strip() for x in _flatten(lower[k]).splitlines() if x.strip())
    for k in _REMOVED_KEYS:
        if k in lower:
            removed.extend(x.strip() for x in _flatten(lower[k]).splitlines() if x.strip())
    edits = lower.get("edits")
    if isinstance(edits, list):
        for e in edits:
            sub = _from_args(tool, e, actor, start, end)
            added.extend(sub.added)
            removed.extend(sub.removed)
    rest = {
        k: v
        for k, v in lower.items()
        if k not in (*_COMMAND_KEYS, *_QUERY_KEYS, *_TARGET_KEYS, *_ADDED_KEYS, *_REMOVED_KEYS)
        and k not in (*_DIFF_KEYS, "edits")
    }
    text = "\n".join(x for x in (command, query) if x)
    if rest:
        text = "\n".join(x for x in (text, _flatten(rest)) if x)
    kind: ActionKind = "query" if query and not command else _kind(tool, bool(added), bool(command))
    return Action(actor, tool, kind, target, text, tuple(added), tuple(removed), start, end)


def _turns(text: str) -> list[Turn]:
    """The messages of ``text``, found by their role markers (at most :data:`MAX_TURNS`)."""
    heads = []
    found = sorted(
        [*_TURN_RE.finditer(text), *_BARE_TURN_RE.finditer(text)], key=lambda m: m.start()
    )
    for m in found:
        role = next(g for g in m.groups() if g is not None).lower()
        heads.append((m.start(), m.end(), role))
        if len(heads) >= MAX_TURNS:
            break
    turns = []
    for i, (s, e, role) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        turns.append(Turn(_ROLE_ACTOR.get(role, "unknown"), role, e, end))
        del s
    return turns


def _actor_at(turns: Sequence[Turn], pos: int) -> Actor:
    """Who was speaking at ``pos`` (binary search over the turns' starts)."""
    lo, hi = 0, len(turns)
    while lo < hi:
        mid = (lo + hi) // 2
        if turns[mid].start <= pos:
            lo = mid + 1
        else:
            hi = mid
    return turns[lo - 1].actor if lo else "unknown"


def _json_at(text: str, pos: int) -> tuple[Any, int] | None:
    """The JSON value starting at ``pos`` and where it ends, or None; at most
    :data:`MAX_JSON_CHARS` are decoded (json's decoder is linear, but unbounded)."""
    try:
        return _DECODER.raw_decode(text[pos : pos + MAX_JSON_CHARS])
    except ValueError:
        return None


_DECODER = json.JSONDecoder()


def transcript_view(text: str) -> View:
    """Turns and actions of ``text``, whatever tool-call convention it uses."""
    turns = _turns(text)
    actions: list[Action] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        """Whether the span from ``s`` to ``e`` overlaps no action taken so far."""
        return not any(s < te and ts < e for ts, te in taken)

    def add(a: Action) -> None:
        """Take action ``a`` if there is room and its span is free."""
        if len(actions) < MAX_ACTIONS and free(a.start, a.end):
            actions.append(a)
            taken.append((a.start, a.end))

    def actor(pos: int, tool_like: bool = True) -> Actor:
        """Who acted at ``pos``: the turn's speaker, except that text inside a tool result is
        nobody's act.
        """
        who = _actor_at(turns, pos)
        # Text inside a tool result is output, not an act; a call printed there (a log of an
        # earlier session) is still attributed to whoever produced the output.
        return who if who != "unknown" or not tool_like else "unknown"

    for m in _CALL_RE.finditer(text) if "[tool call " in text else ():
        parsed = _json_at(text, m.end())
        if parsed is not None:
            args, n = parsed
            end = m.end() + n
        else:
            line_end = text.find("\n", m.end())
            end = len(text) if line_end < 0 else line_end
            args = text[m.end() : end]
        add(_from_args(m.group(1).strip().lower(), args, actor(m.start()), m.start(), end))
    for m in _INVOKE_RE.finditer(text) if "<invoke" in text or "<function=" in text else ():
        tool = (m.group(1) or m.group(3) or "").lower()
        body = m.group(2) if m.group(1) is not None else m.group(4) or ""
        params = {
            (p.group(1) or p.group(3)): (p.group(2) if p.group(1) else p.group(4)) or ""
            for p in _PARAM_RE.finditer(body)
        }
        add(_from_args(tool, params or body, actor(m.start()), m.start(), m.end()))
    for m in _JSON_CALL_RE.finditer(text) if '{"' in text or "{ " in text else ():
        if actor(m.start(1)) == "tool":
            continue  # JSON in a tool's output is data, not a call
        parsed = _json_at(text, m.start(1))
        if parsed is None or not isinstance(parsed[0], Mapping):
            continue
        obj, n = parsed
        tool = str(
            obj.get("name")
            or obj.get("tool")
            or obj.get("tool_name")
            or obj.get("function")
            or obj.get("action")
            or obj.get("recipient_name")
            or "?"
        )
        args = next(
            (
                obj[k]
                for k in ("arguments", "input", "parameters", "args", "tool_input", "action_input")
                if k in obj
            ),
            {k: v for k, v in obj.items() if k not in ("name", "tool", "type", "id")},
        )
        if isinstance(args, str):
            inner = _json_at(args, 0) if args.lstrip().startswith("{") else None
            args = inner[0] if inner is not None else args
        add(_from_args(tool.lower(), args, actor(m.start(1)), m.start(1), m.start(1) + n))
    for m in _REACT_RE.finditer(text) if "Action" in text else ():
        raw = m.group(2).strip()
        parsed = _json_at(raw, 0) if raw.startswith("{") else None
        args = parsed[0] if parsed is not None else raw
        add(_from_args(m.group(1).lower(), args, actor(m.start()), m.start(), m.end()))
    for m in _TAG_RE.finditer(text) if "</" in text else ():
        tool = m.group(1).lower()
        body = m.group(2)
        parsed = _json_at(body.strip(), 0) if body.lstrip().startswith("{") else None
        add(
            _from_args(
                tool, parsed[0] if parsed else body.strip(), actor(m.start()), m.start(), m.end()
            )
        )
    for m in _FENCE_RE.finditer(text) if "```" in text or "~~~" in text else ():
        info = m.group(2).strip().split(None, 1)
        tool = info[0].lower() if info else ""
        target = info[1] if len(info) > 1 else ""
        body = m.group(3)
        who = actor(m.start())
        if who == "tool":
            continue  # code shown in a tool's output is not an act of the agent
        if _looks_like_diff(body) or tool in ("diff", "patch", "edit"):
            add_, rem = _diff_lines(body)
            ctx = _diff_context(body)
            add(Action(who, tool or "edit", "edit", target, "", add_, rem, m.start(), m.end(), ctx))
        elif tool in ("json",):
            parsed = _json_at(body.strip(), 0)
            if parsed is not None:
                add(_from_args(tool, parsed[0], who, m.start(), m.end()))
        else:
            kind = _kind(tool, False, True) if tool else "code"
            add(Action(who, tool, kind, target, body.strip(), (), (), m.start(), m.end()))
    for m in _DIFF_RE.finditer(text) if "\n+++ " in text else ():
        target = re.sub(r"^[ab]/", "", m.group(2).split("\t")[0].strip())
        add_, rem = _diff_lines(m.group(3))
        if add_ or rem:
            ctx = _diff_context(m.group(3))
            add(
                Action(
                    actor(m.start()), "diff", "edit", target, "", add_, rem, m.start(), m.end(), ctx
                )
            )
    for m in _PROMPT_RE.finditer(text) if "$ " in text else ():
        who = actor(m.start())
        if who in ("agent", "unknown", "user"):
            add(Action(who, "shell", "shell", "", m.group(1).strip(), (), (), m.start(), m.end()))
    actions.sort(key=lambda a: a.start)
    return View(text, tuple(turns), tuple(actions))
