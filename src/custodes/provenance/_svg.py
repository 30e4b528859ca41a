"""A lineage drawn as SVG: one row per node, indented by depth (the CLI's ``--svg`` and the
server's ``/provenance/lineage/{digest}.svg``)."""

from __future__ import annotations

from html import escape

from custodes.provenance._lineage import LineageNode

__all__ = ["lineage_svg"]

_ROOT_COLOUR = "#2a7"  # a registered root
_RUN_COLOUR = "#27a"  # produced by a registered run


def lineage_svg(node: LineageNode) -> str:
    """The lineage under ``node`` as a standalone SVG document (every text escaped)."""
    rows: list[tuple[int, LineageNode]] = []
    stack = [(0, node)]
    while stack:
        depth, n = stack.pop()
        rows.append((depth, n))
        stack.extend((depth + 1, c) for c in reversed(n.inputs))
    width = 600 + 30 * max(depth for depth, _ in rows)
    height = 30 * len(rows) + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="monospace" font-size="12">',
        f"<title>lineage of {escape(node.artifact.digest)}</title>",
    ]
    for i, (depth, n) in enumerate(rows):
        x, y = 10 + depth * 30, 20 + i * 30
        a = n.artifact
        colour = _ROOT_COLOUR if n.run is None else _RUN_COLOUR
        text = f"{n.role + ': ' if n.role else ''}{a.kind} {a.name} {a.digest[:19]}"
        if n.repeat:
            text += " (above)"
        parts.append(f'<rect x="{x}" y="{y - 14}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 18}" y="{y - 3}">{escape(text)}</text>')
        if depth:
            parts.append(
                f'<line x1="{x - 24}" y1="{y - 8}" x2="{x - 2}" y2="{y - 8}" stroke="#999"/>'
            )
    parts.append("</svg>")
    return "\n".join(parts)
