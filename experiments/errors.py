"""Errors that reach a user: the message names the input and the fix; the CLI exits 2."""


class UserError(Exception):
    """Bad input (spec, flag, file, bundle). The CLI prints the message and exits with 2."""
