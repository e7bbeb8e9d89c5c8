"""Figures the chapters share: method diagrams drawn with matplotlib (no extra tool to install)."""

from __future__ import annotations

from collections.abc import Sequence


def cycle_diagram(steps: Sequence[str], *, centre: str = "", title: str = "", ax=None):
    """A loop of labelled boxes joined by arrows, clockwise from the top, with an optional label in
    the middle: the shape of every iterative method in this book. Returns the axes."""
    import matplotlib.pyplot as plt
    import numpy as np

    if len(steps) < 2:
        raise ValueError("a cycle needs at least two steps")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.2))
    angles = np.pi / 2 - 2 * np.pi * np.arange(len(steps)) / len(steps)
    xs, ys = 1.55 * np.cos(angles), np.sin(angles)
    box = {"boxstyle": "round,pad=0.45", "facecolor": "#eef3fb", "edgecolor": "#33557f"}
    for i, (x, y, label) in enumerate(zip(xs, ys, steps)):
        ax.text(x, y, label, ha="center", va="center", fontsize=9, bbox=box, wrap=True, zorder=3)
        j = (i + 1) % len(steps)
        start, end = np.array([x, y]), np.array([xs[j], ys[j]])
        ax.annotate("", xy=start + 0.72 * (end - start), xytext=start + 0.28 * (end - start),
                    arrowprops={"arrowstyle": "-|>", "color": "#33557f", "lw": 1.4, "connectionstyle": "arc3,rad=-0.15"})
    if centre:
        ax.text(0, 0, centre, ha="center", va="center", fontsize=10, style="italic", color="#333333")
    ax.set(xlim=(-2.4, 2.4), ylim=(-1.35, 1.35), title=title)
    ax.set_axis_off()
    return ax
