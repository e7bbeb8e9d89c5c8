"""Loaders and record schemas for the real datasets (oasst1 in ``repro.data.oasst``), and the error
they raise on malformed input. Loaders live in their own modules, imported where needed."""

from __future__ import annotations

from repro.errors import ReproError


class DataError(ReproError):
    """A dataset file or record is malformed or missing; the message names the file and the record."""


__all__ = ["DataError"]
