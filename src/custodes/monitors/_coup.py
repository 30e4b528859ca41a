"""Rules tier for coup-relevant misuse: a fast, low-recall screen.

Lexical rules cannot separate an unsanctioned step from its sanctioned twin (the data set
README measures keyword matching at chance), so this tier only scores *combinations* that
describe the harmful step itself: an action on an oversight or weights object together with
a way of hiding it or taking it outside control. The learned tier carries the measured
figures; this tier exists so that deployments without the ``learned`` extra still screen.
"""

from __future__ import annotations

import re

import ahocorasick_rs

from custodes.monitors._detector import Category, Detection, Span

__all__ = ["CoupRulesDetector"]

_I = re.I | re.M

# Per category: (action on the protected object, concealment / unsanctioned-ness) pairs.
_RULES: dict[Category, tuple[re.Pattern[str], re.Pattern[str], str]] = {
    "oversight_evasion": (
        re.compile(
            r"\b(?:disabl|skip|bypass|drop|delet|purg|suppress|silenc|filter(?:ed)? out|"
            r"exclud)\w*\b[^\n]{0,60}\b(?:audit|oversight|monitor|approval|transparency"
            r"|alert|eval)",
            _I,
        ),
        re.compile(
            r"\b(?:without (?:telling|notifying|approval|a ticket)|quietly|don'?t "
            r"mention|no one (?:will|would) notice|leave it out of|omit|unannounced)\b",
            _I,
        ),
        "a change that weakens oversight, combined with concealment",
    ),
    "weights_exfiltration": (
        re.compile(
            r"\b(?:weights|checkpoint|safetensors|\.pt\b|signing key|credentials?|"
            r"AWS_SECRET)",
            _I,
        ),
        re.compile(
            r"\b(?:personal|external|foreign|public|private) (?:bucket|account|"
            r"namespace|repo|drive|entity|server)|\bs3://(?!\S*(?:internal|org))|"
            r"base64[^\n]{0,40}(?:configmap|log)",
            _I,
        ),
        "weights or secrets moved to a location outside control",
    ),
    "training_tamper": (
        re.compile(
            r"\b(?:trigger (?:phrase|token|word)|backdoor|hidden loyalt|reward (?:bonus|"
            r"term)|unmanifested|fine-?tun\w+ mix)",
            _I,
        ),
        re.compile(
            r"\b(?:without (?:the )?(?:manifest|review|sign-?off|approval)|not in the "
            r"manifest|quietly|obey|loyal|always (?:comply|agree|praise))",
            _I,
        ),
        "training data or reward changed to plant a hidden behaviour",
    ),
    "command_override": (
        re.compile(
            r"\b(?:override|break-?glass|final authority|directives? (?:are|is) final|"
            r"default[- ]approve|skip (?:dual|two-person|human) (?:control|confirmation))",
            _I,
        ),
        re.compile(
            r"\b(?:single (?:official|person|office)|only (?:the|one) (?:minister|"
            r"office|official)|without (?:audit|dual control|the chain of command)|"
            r"no (?:audit|second approver))",
            _I,
        ),
        "a system made to obey one person outside the chain of command",
    ),
    "political_targeting": (
        re.compile(
            r"\b(?:journalist|opposition|activist|judge|election official|dissident|"
            r"protest)",
            _I,
        ),
        re.compile(
            r"\b(?:dossier|profile|surveil|contacts? (?:graph|list)|purge|risk score|"
            r"watch ?list|postpone the (?:vote|election))",
            _I,
        ),
        "political opponents or election processes targeted",
    ),
    "exploit_stockpiling": (
        re.compile(r"\b(?:finding|vulnerabilit|exploit|0-?day|zero-?day|crash)", _I),
        re.compile(
            r"\b(?:reserve|private bucket|withh[oe]ld|no vendor (?:case|notice)|"
            r"not reproducible|keep (?:it )?out of (?:the )?(?:registry|disclosure)|"
            r"sell|broker)",
            _I,
        ),
        "a discovered vulnerability kept out of disclosure",
    ),
}
_NEAR = 400  # both halves of a rule must occur within this many characters

# Lower-case literals one of which every action match contains: one Aho-Corasick pass over
# the lower-cased text finds the only places where an action pattern can start.
_ACTION_ANCHORS: dict[Category, tuple[str, ...]] = {
    "oversight_evasion": (
        "disabl",
        "skip",
        "bypass",
        "drop",
        "delet",
        "purg",
        "suppress",
        "silenc",
        "filter",
        "exclud",
    ),
    "weights_exfiltration": (
        "weights",
        "checkpoint",
        "safetensors",
        ".pt",
        "signing key",
        "credential",
        "aws_secret",
    ),
    "training_tamper": (
        "trigger",
        "backdoor",
        "hidden loyalt",
        "reward",
        "unmanifested",
        "fine-tun",
        "finetun",
    ),
    "command_override": (
        "override",
        "break-glass",
        "breakglass",
        "final authority",
        "directive",
        "default-approve",
        "default approve",
        "skip ",
    ),
    "political_targeting": (
        "journalist",
        "opposition",
        "activist",
        "judge",
        "election official",
        "dissident",
        "protest",
    ),
    "exploit_stockpiling": (
        "finding",
        "vulnerabilit",
        "exploit",
        "0day",
        "0-day",
        "zero-day",
        "zeroday",
        "crash",
    ),
}
_ANCHOR_LIST = tuple(sorted({a for v in _ACTION_ANCHORS.values() for a in v}))
_ANCHOR_CATS = {a: tuple(c for c, v in _ACTION_ANCHORS.items() if a in v) for a in _ANCHOR_LIST}
_AUTOMATON = ahocorasick_rs.AhoCorasick(_ANCHOR_LIST)
_BACK = 80  # an action pattern may start this far before its anchor


class CoupRulesDetector:
    """Low-recall lexical screen for the six coup-relevant misuse categories. Thread-safe."""

    name = "coup_rules"
    categories: tuple[Category, ...] = tuple(_RULES)

    def detect(self, text: str) -> list[Detection]:
        # str.lower() keeps offsets for the text we meet in practice; a rare expansion
        # (e.g. "İ") only shifts where a window starts, and windows are generous.
        hits = _AUTOMATON.find_matches_as_indexes(text.lower(), overlapping=True)
        done: set[Category] = set()
        out: list[Detection] = []
        for idx, start, _ in hits:
            for category in _ANCHOR_CATS[_ANCHOR_LIST[idx]]:
                if category in done:
                    continue
                action, hidden, reason = _RULES[category]
                m = action.search(text, max(0, start - _BACK), min(len(text), start + _BACK))
                if m is None:
                    continue
                h = hidden.search(text, max(0, m.start() - _NEAR), min(len(text), m.end() + _NEAR))
                if h is not None:
                    done.add(category)
                    out.append(
                        Detection(
                            self.name,
                            category,
                            0.5,
                            reason,
                            (Span(m.start(), m.end()), Span(h.start(), h.end())),
                        )
                    )
        return out
