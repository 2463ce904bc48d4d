"""Errors that reach a user: the message names the input and the fix; the CLI exits 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input (spec, flag, file, bundle). The CLI prints the message and exits with 2."""


class FieldError(UserError):
    """Bad input that belongs to one spec field, so a form can show it beside that field.

    Attributes:
        field: the dotted spec field the fix goes in, e.g. "task.path" or "task.vocab_size".
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[FieldError], tuple[str, str]]:
        # Exceptions pickle their args only; keep the field when one crosses a process boundary.
        return (type(self), (str(self), self.field))


class StoreError(UserError):
    """A store file the engine cannot use; the message names the file, the fault and the fix.

    Attributes:
        kind: which fault: "corrupt" (not a readable DuckDB file: truncated, zero-length,
            damaged), "not_writable" (the file cannot be written by this user),
            "dir_not_writable" (its folder cannot be written: a new store cannot be created
            there, and DuckDB cannot write its journal `<store>.wal` beside the file), "busy"
            (another process held its lock for too long) or "too_new" (a later version's
            schema).
    """

    KIND = "store"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or self.KIND

    def __reduce__(self) -> tuple[type[StoreError], tuple[str, str]]:
        # Keep the kind when one crosses a process boundary (as FieldError keeps its field).
        return (type(self), (str(self), self.kind))
