"""A picture of concentration: per tier and window, the share of each of the top users
(persons) as a stacked bar, the rest in grey, with the HHI written beside it. Plain SVG 1.1,
no scripts or external resources, so it can be attached to a report as it is."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from custodes.usage._figures import TierFigures

__all__ = ["figures_svg"]

_COLOURS = ("#b2182b", "#ef8a62", "#fddbc7", "#d1e5f0", "#67a9cf")
_BAR = 480


def figures_svg(figures: Sequence[TierFigures], shares: Sequence[dict[str, int]]) -> str:
    """The chart of ``figures`` (tokens by person); ``shares[i]`` holds the tokens by person of
    ``figures[i]``'s window."""
    row, top = 34, 40
    height = top + row * len(figures) + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_BAR + 420}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<text x="10" y="22" font-size="15">Share of tokens by person (top 5, rest grey); '
        "HHI 0-10,000</text>",
    ]
    for i, (f, amounts) in enumerate(zip(figures, shares, strict=True)):
        y = top + i * row
        out.append(f'<text x="10" y="{y + 15}">{escape(f.capability)} / {escape(f.window)}</text>')
        x = 200.0
        total = f.tokens
        if total <= 0:
            out.append(f'<text x="{x}" y="{y + 15}" fill="#666">no use</text>')
            continue
        ranked = sorted(amounts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        for j, (person, amount) in enumerate(ranked):
            w = _BAR * amount / total
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" fill="{_COLOURS[j]}">'
                f"<title>{escape(person)}: {amount / total:.1%}</title></rect>"
            )
            x += w
        rest = 200 + _BAR - x
        if rest > 0.05:
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{rest:.1f}" height="20" fill="#ccc"/>')
        c = f.persons_tokens
        out.append(
            f'<text x="{200 + _BAR + 10}" y="{y + 15}">top {escape(c.top or "")} '
            f"{(c.top_share or 0):.0%}, HHI {c.hhi or 0:,.0f}, {c.distinct} persons</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
