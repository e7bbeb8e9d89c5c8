"""repro: a reproducible study of aligning language models with AI feedback.

Subpackages, one job each (see DESIGN.md): ``world`` (the verifiable world), ``data`` (loaders and
record schemas), ``models`` (tokenizer and tiny Llama factory), ``generation`` (batched backends),
``judges``, ``training`` (thin wrappers over trl), ``studies``, ``evaluation``, ``runs`` (run store,
papermill runner, sweeps) and ``book`` (book helpers). Importing ``repro`` is cheap: heavy libraries
are imported by the subpackages that need them.
"""

__version__ = "0.1.0"
