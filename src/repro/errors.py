"""Errors a user can act on. The CLI prints the message on one line and exits with ``exit_code``."""


class ReproError(Exception):
    """Bad input or a state the user can fix: the message names what is wrong and where."""

    exit_code = 2
