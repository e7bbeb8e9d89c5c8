"""Optional modules that other libraries import eagerly, made to load on first use instead.

``rfc3987_syntax``: jsonschema imports it when jsonschema itself is imported, to check the ``iri`` and
``iri-reference`` string formats; on import it builds some forty Lark parsers, which took 0.76-0.85 s on
2 cores (``python -X importtime -c "import nbformat"``: 0.86-0.97 s in all). nbformat imports jsonschema,
papermill and myst-nb import nbformat, so every ``repro run`` paid for it twice: in
its own process (papermill) and in its kernel (the notebooks' ``glue`` is myst-nb's). So did every sweep
worker and every book build, though none of them checks an IRI (a known cost:
python-jsonschema/jsonschema#1428, #1521). The package is installed here only because JupyterLab (the
``dev`` extra) asks for ``jsonschema[format-nongpl]``. A ``repro run`` of ``10_self_rewarding`` whose
stages are all reused (the kill test's profile) took 7.84-8.40 s with it and 5.65-6.01 s without.

`defer_rfc3987_syntax` puts a stand-in module in its place until something calls it: jsonschema's
``from rfc3987_syntax import is_valid_syntax`` gets a function that imports the real module on its first
call and then hands every call to it, so an IRI is checked exactly as before, only the cost moves to the
first check. Any other attribute of the stand-in does the same. ``import repro`` installs it (it finds the
module without importing it: about 0.1 ms); it does nothing where the module is absent or already
imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

RFC3987_SYNTAX = "rfc3987_syntax"


def _real(name: str, stand_in: types.ModuleType) -> types.ModuleType:
    """The module ``name`` itself, imported now in place of ``stand_in``."""
    if sys.modules.get(name) is stand_in:
        del sys.modules[name]
    return importlib.import_module(name)


def defer_rfc3987_syntax() -> bool:
    """Stand in for ``rfc3987_syntax`` until it is used (see the module's docstring); returns whether
    the stand-in was installed."""
    if RFC3987_SYNTAX in sys.modules or importlib.util.find_spec(RFC3987_SYNTAX) is None:
        return False
    stand_in = types.ModuleType(RFC3987_SYNTAX, f"{RFC3987_SYNTAX}, imported on first use (repro.deferred)")

    def is_valid_syntax(*args, **kwargs):
        return _real(RFC3987_SYNTAX, stand_in).is_valid_syntax(*args, **kwargs)

    def __getattr__(attribute: str):
        if attribute.startswith("__"):  # the import system's probes (__path__, ...) do not load it
            raise AttributeError(attribute)
        return getattr(_real(RFC3987_SYNTAX, stand_in), attribute)

    stand_in.is_valid_syntax = is_valid_syntax
    stand_in.__getattr__ = __getattr__
    sys.modules[RFC3987_SYNTAX] = stand_in
    return True
