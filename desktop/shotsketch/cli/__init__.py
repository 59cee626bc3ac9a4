"""Headless commands. `shotsketch` with no command opens the window.

Each command lives in a module of this package with a ``register(subparsers)`` function.
Every expected failure is raised as :class:`CliError` and printed as one line on stderr
with a non-zero exit status; tracebacks go to the log file only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from shotsketch import __version__


class CliError(Exception):
    """A failure a person can act on: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """Usage errors become one line (CliError), like every other bad input."""

    def error(self, message: str):  # type: ignore[override]
        raise CliError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    from shotsketch.cli import adherence, doctor, generate, layout, timeline

    parser = _Parser(prog="shotsketch", description="Sketch a shot, generate it locally, export it.")
    parser.add_argument("--version", action="version", version=f"shotsketch {__version__}")
    parser.add_argument("--demo", action="store_true", help="open the window with the demo model")
    parser.add_argument("--screenshot", metavar="PATH", help="with --demo: save a screenshot of the window and exit")
    parser.add_argument("--size", metavar="WxH", help="window size, e.g. 1920x1080 (for screenshots)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (generate, doctor, layout, timeline, adherence):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from shotsketch.logs import setup_logging

    log = logging.getLogger("shotsketch.cli")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        setup_logging(verbose=args.verbose)
        if args.command is None:
            return gui_main(args)
        return int(args.func(args) or 0)
    except CliError as exc:
        from shotsketch.core.inputs import one_line

        print(f"shotsketch: {one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("shotsketch: cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place unexpected errors surface
        from shotsketch.logs import log_file

        log.exception("unexpected error")
        print(f"shotsketch: unexpected error: {exc} (details in {log_file()})", file=sys.stderr)
        return 1


def gui_main(args: argparse.Namespace | None = None) -> int:
    from shotsketch.qtcheck import window_problem

    problem = window_problem()  # before Qt starts: a missing X11 library would abort it
    if problem:
        print(problem, file=sys.stderr)
        return 3
    try:
        from shotsketch.ui.app import run_app
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("shotsketch.ui"):
            print("shotsketch: the window is not available in this build; see `shotsketch --help`", file=sys.stderr)
            return 2
        raise
    return run_app(args)
