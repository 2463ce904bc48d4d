"""The version of the mutransfer project (mucore, experiments and the dashboard ship together).

Defined here and nowhere else: pyproject.toml reads it (`dynamic = ["version"]`, through
`[tool.setuptools.dynamic]`), and `experiments.bundle.build` writes it into every bundle's evidence.
Kept in code rather than read from pyproject.toml at run time because the Docker image and a
plain checkout on PYTHONPATH carry the packages but no installed metadata.
"""

__version__ = "0.1.0"
