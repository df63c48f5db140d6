"""What every Shepherd chart does last: lay out the figure, write the PNG, free the figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_png(fig: Any, path: Path) -> Path:
    """Dates slanted, layout tightened, written at 90 dpi to `path` (folders made), the figure closed."""
    import matplotlib.pyplot as plt

    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
