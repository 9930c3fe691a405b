r"""The family tree of the optimizers, drawn as an SVG that links to each page.

Two relations are easy to confuse, and the picture keeps them apart:

* **the lineage of ideas** (the registry's `parent`): whose idea an optimizer refines. It lays the
  tree out, root on the left, each generation one column to the right, drawn as grey elbows;
* **code inheritance** (the class's Python base): which class its code extends. Where that is not
  the idea's parent (LAMB's code extends Adam's, its idea refines LARS), a coloured curve shows it.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

from annotated_opt.core.registry import OptimizerInfo

BOX_WIDTH, BOX_HEIGHT = 128, 30
COLUMN, ROW = 168, 40
MARGIN = 12
LEGEND_HEIGHT = 34
# One hue per family, readable on white and on the dark theme's grey.
PALETTE = ("#1565c0", "#2e7d32", "#c62828", "#6a1b9a", "#ef6c00", "#00838f", "#ad1457", "#4e342e", "#283593",
           "#558b2f")


@dataclass
class Node:
    info: OptimizerInfo
    column: int
    row: float

    @property
    def x(self) -> float:
        return MARGIN + self.column * COLUMN

    @property
    def y(self) -> float:
        return MARGIN + LEGEND_HEIGHT + self.row * ROW


def code_parent(info: OptimizerInfo, infos: list[OptimizerInfo]) -> OptimizerInfo | None:
    """The registered optimizer whose class `info`'s class extends most directly, if any."""
    by_class = {other.cls: other for other in infos if other is not info}
    return next((by_class[base] for base in info.cls.__mro__[1:] if base in by_class), None)


def layout(infos: list[OptimizerInfo]) -> dict[str, Node]:
    """Each optimizer's column (its generation) and row (leaves in order, a parent centred on its children)."""
    by_name = {info.name: info for info in infos}
    children: dict[str | None, list[OptimizerInfo]] = {}
    for info in infos:
        parent = info.parent if info.parent in by_name else None
        children.setdefault(parent, []).append(info)
    nodes: dict[str, Node] = {}
    next_row = 0.0

    def place(info: OptimizerInfo, column: int) -> float:
        nonlocal next_row
        kids = sorted(children.get(info.name, []), key=lambda i: (i.year, i.name))
        if kids:
            rows = [place(kid, column + 1) for kid in kids]
            row = (rows[0] + rows[-1]) / 2
        else:
            row, next_row = next_row, next_row + 1
        nodes[info.name] = Node(info, column, row)
        return row

    for root in sorted(children.get(None, []), key=lambda i: (i.family, i.year)):
        place(root, 0)
        next_row += 0.4
    return nodes


def family_tree_svg(infos: list[OptimizerInfo], link: Callable[[OptimizerInfo], str]) -> str:
    """The SVG, each box a link to `link(info)`."""
    nodes = layout(infos)
    families = sorted({info.family for info in infos})
    colour = {family: PALETTE[i % len(PALETTE)] for i, family in enumerate(families)}
    width = MARGIN * 2 + max(n.column for n in nodes.values()) * COLUMN + BOX_WIDTH
    height = MARGIN * 2 + LEGEND_HEIGHT + (max(n.row for n in nodes.values()) + 1) * ROW
    parts = [f'<svg class="ao-family-tree" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
             f'role="img" aria-label="The family tree of the optimizers" xmlns="http://www.w3.org/2000/svg">',
             '<defs><marker id="ao-arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" '
             'orient="auto"><path d="M0,0 L8,4 L0,8 z" class="ao-tree-code"/></marker></defs>',
             _legend()]
    for node in nodes.values():
        parent = nodes.get(node.info.parent or "")
        if parent is not None:
            x0, y0 = parent.x + BOX_WIDTH, parent.y + BOX_HEIGHT / 2
            x1, y1 = node.x, node.y + BOX_HEIGHT / 2
            middle = (x0 + x1) / 2
            parts.append(f'<path class="ao-tree-idea" d="M{x0:.0f},{y0:.0f} H{middle:.0f} V{y1:.0f} H{x1:.0f}"/>')
    for node in nodes.values():
        base = code_parent(node.info, infos)
        if base is not None and base.name != node.info.parent and base.name in nodes:
            start = nodes[base.name]
            x0, y0 = start.x + BOX_WIDTH / 2, start.y + BOX_HEIGHT
            x1, y1 = node.x + BOX_WIDTH / 2, node.y
            if y1 < y0:
                y0, y1 = start.y, node.y + BOX_HEIGHT
            bend = (x0 + x1) / 2 + 40
            parts.append(f'<path class="ao-tree-code" marker-end="url(#ao-arrow)" fill="none" '
                         f'd="M{x0:.0f},{y0:.0f} Q{bend:.0f},{(y0 + y1) / 2:.0f} {x1:.0f},{y1:.0f}">'
                         f'<title>{html.escape(node.info.name)}\'s code extends {html.escape(base.name)}\'s'
                         '</title></path>')
    for node in nodes.values():
        info = node.info
        parts.append(
            f'<a href="{html.escape(link(info))}"><g class="ao-tree-node">'
            f'<title>{html.escape(info.name)} ({info.year}), {html.escape(info.family)} family</title>'
            f'<rect x="{node.x:.0f}" y="{node.y:.0f}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="5" '
            f'style="stroke:{colour[info.family]}"/>'
            f'<text x="{node.x + 8:.0f}" y="{node.y + 19:.0f}">{html.escape(info.name)}</text>'
            f'<text class="ao-tree-year" x="{node.x + BOX_WIDTH - 8:.0f}" y="{node.y + 19:.0f}" '
            f'text-anchor="end">{info.year}</text></g></a>')
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    y = MARGIN + 12
    return (f'<g class="ao-tree-legend"><path class="ao-tree-idea" d="M{MARGIN},{y} h36"/>'
            f'<text x="{MARGIN + 44}" y="{y + 4}">refines the idea of (layout)</text>'
            f'<path class="ao-tree-code" marker-end="url(#ao-arrow)" d="M{MARGIN + 270},{y} h36"/>'
            f'<text x="{MARGIN + 314}" y="{y + 4}">its code extends another optimizer\'s class</text></g>')
