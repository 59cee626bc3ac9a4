"""`shotsketch layout draft|describe` and `shotsketch lint`: the pure-Python core, headless."""

from __future__ import annotations

import argparse
import json
import sys

from shotsketch.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layout", help="draft a layout from a prompt, or describe a layout in words")
    layout_sub = p.add_subparsers(dest="layout_command", metavar="ACTION", required=True)

    d = layout_sub.add_parser("draft", help="print a draft layout (JSON) for a prompt")
    d.add_argument("prompt", help="the prompt, in quotes")
    d.add_argument("--aspect", type=_aspect, default=832 / 480,
                   help="frame width/height, e.g. 1.7333 or 832x480 (default 832x480)")
    d.add_argument("--subject", action="append", dest="subjects", metavar="NAME",
                   help="a subject name to look for (repeatable); default: guess from the prompt")
    d.set_defaults(func=run_draft)

    s = layout_sub.add_parser("describe", help="print the spatial clause for a layout JSON file")
    s.add_argument("layout_file", metavar="LAYOUT.json", help="a layout file, or - for standard input")
    s.set_defaults(func=run_describe)

    lint = sub.add_parser(
        "lint", help="check a prompt's spatial wording",
        description="Check a prompt's spatial wording. Exit status 1 when a finding is an error.",
    )
    lint.add_argument("prompt", help="the prompt, in quotes")
    lint.add_argument("--negative", metavar="TEXT", help="the negative prompt")
    lint.add_argument("--json", action="store_true", help="print the findings as JSON")
    lint.add_argument("--max-tokens", type=int, default=512, help="how many tokens the text encoder reads")
    lint.set_defaults(func=run_lint)


def _aspect(text: str) -> float:
    try:
        if "x" in text.lower() or ":" in text:
            w, h = text.lower().replace(":", "x").split("x")
            value = float(w) / float(h)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not an aspect ratio: {text!r} (use e.g. 1.7333 or 832x480)") from None
    if not 0.1 <= value <= 10:
        raise argparse.ArgumentTypeError(f"aspect {value:g} is outside 0.1 to 10")
    return value


def run_draft(args: argparse.Namespace) -> int:
    from shotsketch.core.phrasing import draft_layout

    draft = draft_layout(args.prompt, args.aspect, subjects=args.subjects)
    print(draft.layout.to_json())
    if draft.unplaced:
        print(f"not placed by the prompt (check them): {', '.join(draft.unplaced)}", file=sys.stderr)
    if not draft.subjects_found and draft.layout.regions:
        bands = ", ".join(r.name for r in draft.layout.regions)
        print(f"no subjects to box, only the frame's bands ({bands}); name one to box it, e.g. 'a small boat'",
              file=sys.stderr)
    elif not draft.subjects_found:
        print("no subjects found (write them as 'a red car', 'the blue cube')", file=sys.stderr)
    return 0


def run_describe(args: argparse.Namespace) -> int:
    from shotsketch.core.layout import Layout, LayoutError, load_layout
    from shotsketch.core.phrasing import describe

    try:
        if args.layout_file == "-":
            layout = Layout.from_json(sys.stdin.read())
        else:
            layout = load_layout(args.layout_file)
    except LayoutError as exc:
        raise CliError(" ".join(str(exc).split())) from None
    print(describe(layout))
    return 0


def run_lint(args: argparse.Namespace) -> int:
    from shotsketch.core.lint import lint

    from shotsketch.core.lint import Severity

    findings = lint(args.prompt, args.negative, max_tokens=args.max_tokens)
    status = 1 if any(f.severity is Severity.ERROR for f in findings) else 0
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2, ensure_ascii=False))
        return status
    if not findings:
        print("no findings")
        return 0
    for f in findings:
        start, end = f.span
        source = args.prompt if f.target.value == "prompt" else (args.negative or "")
        quoted = f' "{source[start:end]}"' if end > start and end - start <= 60 else ""
        where = f"{f.target.value} {start}-{end}"
        print(f"{f.severity.value}: {f.code} ({where}){quoted}: {f.message}")
        if f.suggestion:
            print(f"    suggestion: {f.suggestion}")
        if f.replacement is not None and len(f.replacement) <= 80:
            print(f'    fix: replace with "{f.replacement}"')
    return status
