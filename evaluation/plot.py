"""One PNG comparing strategies: accuracy against generated tokens per question."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_runs(runs: list[dict[str, Any]], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for run in runs:
        metrics = run["metrics"]
        x, y = metrics["tokens_per_question"] or 0.0, metrics["accuracy"] or 0.0
        axes.scatter([x], [y], s=40)
        axes.annotate(
            run["strategy"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8
        )
    axes.set_xlabel("generated tokens per question")
    axes.set_ylabel("answer accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
