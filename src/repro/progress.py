"""Whether long loops show progress bars.

On by default (a person running the library in a terminal or JupyterLab wants to see them). The
papermill runner turns them off inside executed notebooks (``REPRO_PROGRESS=0``), where papermill
shows its own progress per cell and the bars would only clutter the book.
"""

from __future__ import annotations

import os


def show_progress(flag: bool | None = None) -> bool:
    """``flag`` if given, else what ``REPRO_PROGRESS`` says (default: on)."""
    return flag if flag is not None else os.environ.get("REPRO_PROGRESS", "1") != "0"
