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
