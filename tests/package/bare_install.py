"""What ``pip install sessionstore`` alone gives, checked in a virtualenv holding only that.

check.py runs this file with that virtualenv's interpreter (no pytest there: nothing
but the wheel and its one dependency). It prints one line per check and exits 1 if
any failed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

OPTIONAL = (
    "redis",
    "hiredis",
    "sqlalchemy",
    "asyncpg",
    "asyncmy",
    "typer",
    "rich",
    "click",
    "opentelemetry",
)
"""Top-level packages that only the extras install."""

NEEDS_EXTRA = {
    "redis://127.0.0.1:6379/0": "redis",
    "postgresql://postgres@127.0.0.1:5432/test": "postgres",
    "mariadb://root@127.0.0.1:3306/test": "mysql",
}
"""A URL of each server backend, and the extra that it needs."""

failures: list[str] = []


def check(ok: bool, what: str, detail: str = "") -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}{'' if ok else f': {detail}'}")
    if not ok:
        failures.append(what)


def main() -> int:
    installed = [name for name in OPTIONAL if importlib.util.find_spec(name) is not None]
    check(not installed, "no optional package is installed", f"found {installed}")

    import sessionstore  # noqa: PLC0415 (after the check above, to see what it imports)
    from sessionstore import MissingDependencyError, open_store  # noqa: PLC0415

    where = Path(sessionstore.__file__)
    check(where.is_relative_to(sys.prefix), "sessionstore comes from the wheel", str(where))
    loaded = sorted({name.split(".")[0] for name in sys.modules} & set(OPTIONAL))
    check(not loaded, "import sessionstore imports no optional package", f"imported {loaded}")
    installed_version = importlib.metadata.version("sessionstore")
    check(
        installed_version == sessionstore.__version__,
        "the installed version is sessionstore.__version__",
        f"{installed_version} != {sessionstore.__version__}",
    )

    for url, extra in NEEDS_EXTRA.items():
        command = f"pip install 'sessionstore[{extra}]'"
        try:
            open_store(url)
        except MissingDependencyError as exc:
            check(command in str(exc), f"open_store({url!r}) says {command}", str(exc))
        else:
            check(False, f"open_store({url!r}) raises MissingDependencyError", "it did not")

    script = Path(sys.executable).with_name("sessionstore")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    printed = proc.stdout + proc.stderr
    check(proc.returncode != 0, "sessionstore --help exits non-zero", f"exit {proc.returncode}")
    check(
        "pip install 'sessionstore[cli]'" in proc.stderr,
        "sessionstore --help says pip install 'sessionstore[cli]'",
        printed,
    )
    check("Traceback" not in printed, "sessionstore --help prints no traceback", printed)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
