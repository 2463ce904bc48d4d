"""CLI sub-commands, one module per command group (see experiments.cli)."""
