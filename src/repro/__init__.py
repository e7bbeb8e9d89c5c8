"""repro: a reproducible study of aligning language models with AI feedback.

Subpackages in layers, each importing only from those below it (DESIGN.md at the project root): ``world``,
``data`` and the run store (``runs.store``) at the bottom; ``models``; ``generation``, ``training`` and
``judges``; ``evaluation``; ``studies`` (one package per paper); the notebook runner and sweeps
(``runs``), ``book`` and ``cli`` on top. Importing ``repro`` is cheap: heavy libraries are imported by
the subpackages that need them. It also puts off one module that jsonschema imports eagerly and no step
of the study uses, ``rfc3987_syntax``, to its first use (`repro.deferred`): 2.5 s of every ``repro run``.
"""

__version__ = "0.1.0"

from repro.deferred import defer_rfc3987_syntax

defer_rfc3987_syntax()
