"""The ``sessionstore`` command line: look into and manage stored sessions.

Installed with the ``cli`` extra (``pip install 'sessionstore[cli]'``). Only
the console script imports this package, so ``import sessionstore`` never
loads Typer or Rich.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from sessionstore.errors import MissingDependencyError
from sessionstore.extras import EXTRAS, require

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and exit.

    Exit codes: 0 success, 1 bad argument or missing session, 2 store failure.
    """
    try:
        for package in EXTRAS["cli"]:
            require(package, "cli")
    except MissingDependencyError as exc:
        sys.stderr.write(
            f"sessionstore: error: the command line needs {exc.package!r}: {exc.command}\n"
        )
        sys.exit(1)
    # Imported here so that ``import sessionstore.cli`` loads neither Typer nor Rich.
    from sessionstore.cli.app import app  # noqa: PLC0415

    app(args=None if argv is None else list(argv), prog_name="sessionstore")
