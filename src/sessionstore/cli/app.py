"""The Typer application: global options, the commands, and how failures exit.

Every failure ends the same way, whether it is a bad argument, a missing
session or a broken store: one line on stderr (a traceback too with
``--debug``) and exit code 1 (bad input, missing session, missing extra) or
2 (the store failed).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sessionstore import __version__
from sessionstore.cli import counting, demo, reading, transfer, writing
from sessionstore.cli.runtime import CliState, report_failure

__all__ = ["app"]


class _Group(TyperGroup):
    """Runs the command and turns any failure into one line and an exit code.

    ``--version``, declared on the top level, is given to every command too.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        version = next(p for p in self.params if p.name == "version")
        for command in self.commands.values():
            command.params.append(version)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        state = CliState()
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                obj=state,
                **extra,
            )
            code = result if isinstance(result, int) else 0
        except BrokenPipeError:
            # The reader went away (``sessionstore export | head``): stop quietly.
            sys.stderr.close()
            code = 1
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 (the one exit point)
            code = report_failure(exc, debug=state.debug)
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="sessionstore",
    cls=_Group,
    help="Look into and manage the conversation memory of LLM agents, on any backend.",
    epilog="Example: sessionstore --store sqlite:///app.db ls --user alice",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"sessionstore {__version__}")
        raise typer.Exit


@app.callback()
def _options(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help="Store URL (default: $SESSIONSTORE_URL, else the default SQLite file).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of failures.")] = False,
    version: Annotated[  # read by its callback, which exits
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            expose_value=False,  # so that every command can share it
            callback=_show_version,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    state.store_url = store
    state.debug = debug
    ctx.obj = state


for _module in (demo, reading, counting, writing, transfer):
    _module.register(app)
