"""repro: a reproducible study of aligning language models with AI feedback.

Subpackages in layers, each importing only from those below it (DESIGN.md at the project root): ``world``,
``data`` and the run store (``runs.store``) at the bottom; ``models``; ``generation``, ``training`` and
``judges``; ``evaluation``; ``studies`` (one package per paper); the notebook runner and sweeps
(``runs``), ``book`` and ``cli`` on top. Importing ``repro`` is cheap: heavy libraries are imported by
the subpackages that need them.
"""

__version__ = "0.1.0"
