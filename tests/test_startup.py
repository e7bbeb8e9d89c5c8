"""A kernel's start-up: what the study notebooks import does not import the model stack (torch,
transformers, tokenizers, safetensors, accelerate), the training stack (trl, `datasets`) nor vLLM. Those
are imported where a stage builds, trains or runs a model, so a notebook whose stages are all reused (a
warm book, a sweep's reused runs) never pays for them. On 2 cores, importing pandas, matplotlib and seaborn
takes 1.3 s, and 4.5 s with torch and transformers; notebook 21's imports take 1.35 s.
`tests/test_notebooks.py` checks the same of the notebooks' cells on a store that has every stage."""

import ast
import json
import subprocess
import sys

from repro import paths

NOT_AT_START = ("trl", "datasets", "vllm", "torch", "transformers", "tokenizers", "safetensors", "accelerate")


def notebook_imports() -> list[str]:
    """Every import statement of the study notebooks' code cells."""
    found = set()
    for notebook in sorted(paths.notebooks_dir().glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            try:
                tree = ast.parse(source)
            except SyntaxError:  # IPython magics: not in the study notebooks, and no import to take
                continue
            found.update(ast.unparse(node) for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))
    return sorted(found)


def imported_after(statements: list[str]) -> set[str]:
    """The top-level packages loaded by a fresh interpreter after ``statements``."""
    code = "\n".join([*statements, "import sys, json", "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_notebooks_imports_do_not_import_the_model_stack():
    statements = notebook_imports()
    assert any("repro.studies" in s for s in statements)  # the study modules are among them
    loaded = imported_after(statements)
    assert "repro" in loaded
    assert not loaded & set(NOT_AT_START), f"imported at start-up: {sorted(loaded & set(NOT_AT_START))}"


def test_the_check_sees_an_import_of_trl_and_of_torch():
    assert "trl" in imported_after(["from repro.training.preference import trl_classes", "trl_classes('dpo')"])
    assert {"torch", "transformers"} <= imported_after(["from repro.models import make_llama, build_tokenizer",
                                                        "make_llama('XXS', build_tokenizer(['a']), seed=0)"])


IRI_CHECKS = """
import json, sys, jsonschema
check = jsonschema.Draft7Validator.FORMAT_CHECKER
cases = [("http://example.com/ü?q=1#a", "iri"), ("no scheme here", "iri"), ("../a b", "iri-reference"),
         ("../a/b?c", "iri-reference"), ("mailto:x@y.org", "iri")]
print(json.dumps([check.conforms(value, form) for value, form in cases]))
"""


def _iri_answers(prelude: str) -> tuple[list[bool], bool]:
    """jsonschema's IRI answers in a fresh interpreter after ``prelude``, and whether importing jsonschema
    loaded lark (before the first check)."""
    code = prelude + "\nimport jsonschema\nloaded_early = 'lark' in sys.modules\n" + IRI_CHECKS + "print(loaded_early)"
    out = subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return json.loads(out[-2]), out[-1] == "True"


def test_rfc3987_syntax_loads_on_first_use_and_checks_iris_as_before():
    """``import repro`` defers jsonschema's IRI checker (`repro.deferred`): papermill and nbformat import
    without building its parsers, and the first IRI check gives the answers it gives without repro."""
    assert "lark" not in imported_after(["import repro", "import papermill", "from myst_nb import glue"])
    assert "lark" in imported_after(["import nbformat"])  # without repro: built on import (so the check above can fail)
    with_repro, early = _iri_answers("import repro")
    without, early_without = _iri_answers("")
    assert with_repro == without == [True, False, False, True, True]
    assert not early and early_without


def test_the_stand_in_is_installed_only_where_the_module_is_absent_from_sys_modules(monkeypatch):
    import types

    from repro import deferred

    real = types.ModuleType(deferred.RFC3987_SYNTAX)
    monkeypatch.setitem(sys.modules, deferred.RFC3987_SYNTAX, real)
    assert not deferred.defer_rfc3987_syntax() and sys.modules[deferred.RFC3987_SYNTAX] is real
    monkeypatch.delitem(sys.modules, deferred.RFC3987_SYNTAX)
    monkeypatch.setattr(deferred.importlib.util, "find_spec", lambda name: None)  # not installed
    assert not deferred.defer_rfc3987_syntax() and deferred.RFC3987_SYNTAX not in sys.modules
