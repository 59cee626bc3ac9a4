"""Running ``shotsketch`` in this process for the fault tests, and the contract each run must keep."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run_cli(argv: list[str], capsys) -> Run:  # noqa: ANN001 - pytest's capsys
    from shotsketch.cli import main

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's --help
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def assert_refused_or_done(run: Run) -> None:
    """The exit-code contract: 0 done, or 2 with one line a person can act on; never an
    "unexpected error", never a traceback, never a wall of text."""
    assert "unexpected error" not in run.err, run.err[-2000:]
    assert "Traceback" not in run.err, run.err[-2000:]
    assert run.code in (0, 2), (run.code, run.err[-2000:])
    if run.code == 2:
        lines = [line for line in run.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("shotsketch: "), run.err[-2000:]
        assert len(lines[0]) < 600, f"{len(lines[0])} characters: {lines[0][:300]}"
