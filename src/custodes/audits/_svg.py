"""A plot of each tested arm's effect against its decoys' spread (SVG, no dependencies).

One row per arm: the decoys' effects as grey ticks with their range as a band, the arm's
effect as a dot (red when it is a finding), and a zero line. A reader sees at once whether the
arm stands out of what any name would do.
"""

from __future__ import annotations

from html import escape

from custodes.audits._report import AuditReport

__all__ = ["plot_effects"]

_ROW = 26
_LEFT = 260
_WIDTH = 820
_PLOT = _WIDTH - _LEFT - 30


def plot_effects(report: AuditReport) -> str:
    """The SVG text of the effect plot of ``report``."""
    arms = list(report.arms)
    values = [a.effect for a in arms] + [d for a in arms for d in a.decoy_effects]
    span = max([abs(v) for v in values] + [report.delta, 1.0]) * 1.1
    height = 70 + _ROW * max(1, len(arms))

    def x(value: float) -> float:
        return _LEFT + (value + span) / (2 * span) * _PLOT

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(report.probe_set)}: effect per arm (log-odds) against the decoys</title>",
        f'<text x="10" y="18" font-weight="bold">{escape(report.model)} over '
        f"{escape(report.probe_set)} ({escape(report.probe_set_digest[:19])}…)</text>",
        f'<text x="10" y="36">effect in log-odds (positive favours the arm); grey: decoys; '
        f"dashed: ±δ = {report.delta:g}</text>",
        f'<line x1="{x(0):.1f}" y1="44" x2="{x(0):.1f}" y2="{height - 16}" stroke="#444"/>',
    ]
    for bound in (-report.delta, report.delta):
        out.append(
            f'<line x1="{x(bound):.1f}" y1="44" x2="{x(bound):.1f}" y2="{height - 16}" '
            'stroke="#999" stroke-dasharray="4 3"/>'
        )
    for i, arm in enumerate(arms):
        y = 58 + i * _ROW
        label = escape(f"{arm.family}: {arm.arm}")
        out.append(f'<text x="10" y="{y + 4}">{label[:60]}</text>')
        if arm.decoy_effects:
            low, high = min(arm.decoy_effects), max(arm.decoy_effects)
            out.append(
                f'<rect x="{x(low):.1f}" y="{y - 6}" width="{max(1.0, x(high) - x(low)):.1f}" '
                'height="12" fill="#ddd"/>'
            )
            for d in arm.decoy_effects:
                out.append(
                    f'<line x1="{x(d):.1f}" y1="{y - 6}" x2="{x(d):.1f}" y2="{y + 6}" '
                    'stroke="#888"/>'
                )
        colour = "#c0392b" if arm.finding else "#2c3e50"
        out.append(
            f'<circle cx="{x(arm.effect):.1f}" cy="{y}" r="5" fill="{colour}">'
            f"<title>{label}: {arm.effect:+.2f} (q = {arm.q_value:.2g}, decoy p = "
            f"{arm.decoy_p:.2g}){' finding' if arm.finding else ''}</title></circle>"
        )
    for value in (-span / 1.1, 0.0, span / 1.1):
        out.append(
            f'<text x="{x(value):.1f}" y="{height - 2}" text-anchor="middle">{value:+.1f}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
