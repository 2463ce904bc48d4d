"""`python -m experiments ...`: the command-line face of the engine."""

from experiments.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
