"""Errors a user can act on. The CLI prints the message on one line and exits with ``exit_code``."""


class ReproError(Exception):
    """Bad input or a state the user can fix: the message names what is wrong and where."""

    exit_code = 2


#: The modules that define the project's errors, imported by `exit_code_of` to find them all.
_ERROR_MODULES = ("repro.data", "repro.runs.notebooks", "repro.runs.store", "repro.runs.sweep", "repro.runs.parallel",
                  "repro.models.io", "repro.judges.sequence_rm", "repro.training.jobs", "repro.book.build",
                  "repro.evaluation.claims", "repro.evaluation.development", "repro.book.publish", "repro.book.browser")


def exit_code_of(error_name: str) -> int | None:
    """The exit code of the project's error class called ``error_name`` (as a notebook kernel reports
    it), or None when no error of the project has that name."""
    import importlib

    for module in _ERROR_MODULES:
        importlib.import_module(module)
    found: dict[str, int] = {}
    todo = [ReproError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls.exit_code
        todo.extend(cls.__subclasses__())
    return found.get(error_name)
