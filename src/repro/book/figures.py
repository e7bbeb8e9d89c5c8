"""Figures the chapters share: method diagrams drawn with matplotlib (no extra tool to install)."""

from __future__ import annotations

from collections.abc import Sequence

from repro.book.notebook import set_theme


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


def pipeline_diagram(steps: Sequence[str], *, title: str = "", ax=None):
    """Labelled boxes left to right joined by arrows: a method that runs once from data to model."""
    import matplotlib.pyplot as plt

    if len(steps) < 2:
        raise ValueError("a pipeline needs at least two steps")
    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 1.8))
    box = {"boxstyle": "round,pad=0.45", "facecolor": "#eef3fb", "edgecolor": "#33557f"}
    xs = [i / (len(steps) - 1) for i in range(len(steps))]
    for i, (x, label) in enumerate(zip(xs, steps)):
        ax.text(x, 0.5, label, ha="center", va="center", fontsize=8.5, bbox=box, zorder=3)
        if i + 1 < len(steps):
            gap = xs[i + 1] - x
            ax.annotate("", xy=(x + 0.66 * gap, 0.5), xytext=(x + 0.34 * gap, 0.5), zorder=4,
                        arrowprops={"arrowstyle": "-|>", "color": "#33557f", "lw": 1.6, "mutation_scale": 14})
    ax.set(xlim=(-0.12, 1.12), ylim=(0, 1), title=title)
    ax.set_axis_off()
    return ax


# The three methods, as the chapters and the introduction draw them: (kind, steps, centre label).
METHODS = {
    "self_rewarding": ("cycle", [
        "model $M_t$", "write new prompts\n(fixed generator, few-shot)", "N candidate answers\nper prompt",
        "judge each answer K times\nwith the same $M_t$ (0-5)", "pairs: best vs worst\n(ties dropped)",
        "DPO from $M_t$\n-> $M_{t+1}$"], "$M_1$ = M0 + IFT + EFT"),
    "rlaif": ("pipeline", [
        "a text and\ntwo summaries", "AI labeller reads\nP('1') and P('2'),\nboth orders",
        "soft labels train\na reward model", "RL (REINFORCE + KL)\ntrains the policy\non its reward"], ""),
    "eva": ("cycle", [
        "policy $\\theta_t$ answers each prompt\n$n$ times", "reward model scores\nthe answers",
        "creator: informativeness\n(reward gap), sample 25%", "evolve: 4 chained rewrites\n(in depth / in breadth)",
        "mix 80% evolved\n+ 20% old prompts", "solver: best vs worst\nanswer, DPO -> $\\theta_{t+1}$"],
        "prompts $X_t$ -> $X_{t+1}$"),
}


def method_diagram(name: str, ax=None):
    """The diagram of one method of `METHODS` (``self_rewarding``, ``rlaif``, ``eva``)."""
    if name not in METHODS:
        raise KeyError(f"no diagram {name!r}; diagrams: {', '.join(METHODS)}")
    kind, steps, centre = METHODS[name]
    return cycle_diagram(steps, centre=centre, ax=ax) if kind == "cycle" else pipeline_diagram(steps, ax=ax)


def write_method_figures(folder) -> dict[str, str]:
    """Save each method's diagram as ``<folder>/<name>.png`` (for the introduction); returns the paths."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    set_theme()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in METHODS:
        ax = method_diagram(name)
        path = folder / f"{name}.png"
        ax.figure.savefig(path, bbox_inches="tight", dpi=110, metadata={"Software": None})
        plt.close(ax.figure)
        out[name] = str(path)
    return out
