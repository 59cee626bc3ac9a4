from __future__ import annotations

import json

import pytest

from shotsketch.cli import main
from shotsketch.core.layout import Layout

PROMPT = (
    "A yellow ball rolls from the left edge to the center of the screen, "
    "while a blue cube remains stationary on the right."
)


def test_layout_draft_prints_layout_json(capsys):
    assert main(["layout", "draft", PROMPT]) == 0
    out = capsys.readouterr().out
    layout = Layout.from_json(out)
    assert layout.names == ("yellow ball", "blue cube")
    assert layout.aspect == pytest.approx(832 / 480)
    assert main(["layout", "draft", "--aspect", "1280x704", "A dog and a cat."]) == 0
    captured = capsys.readouterr()
    assert Layout.from_json(captured.out).aspect == pytest.approx(1280 / 704)
    assert "not placed" in captured.err and "dog, cat" in captured.err


def test_a_sunset_is_the_sky_not_a_box(capsys):
    """The lead's spot check: "sunset over the ocean" gave a small "sunset" box in the centre."""
    assert main(["layout", "draft", "sunset over the ocean"]) == 0
    captured = capsys.readouterr()
    layout = Layout.from_json(captured.out)
    assert not layout.subjects and not layout.groups
    assert [r.name for r in layout.regions] == ["ocean"]
    assert captured.err.strip() == ("no subjects to box, only the frame's bands (ocean); "
                                    "name one to box it, e.g. 'a small boat'")


def test_layout_describe_reads_a_file(tmp_path, capsys):
    assert main(["layout", "draft", PROMPT]) == 0
    path = tmp_path / "shot.json"
    path.write_text(capsys.readouterr().out)
    assert main(["layout", "describe", str(path)]) == 0
    assert capsys.readouterr().out.strip() == (
        "The yellow ball moves from the left edge to the center, while the blue cube remains stationary on the right."
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read layout file"),
        ("{oops", "not valid JSON"),
        ('{"schema_version": 7, "aspect": 1, "subjects": []}', "newer Shotsketch"),
    ],
)
def test_layout_describe_bad_input_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    code = main(["layout", "describe", str(path)])
    err = capsys.readouterr().err
    assert code != 0 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_lint_text_and_json(capsys):
    assert main(["lint", "A red car parked near the house."]) == 0
    out = capsys.readouterr().out
    assert 'warning: vague-spatial (prompt 17-21) "near"' in out and "missing-negative" in out
    assert main(["lint", "--json", "--negative", "blurry", "A red car parked near the house."]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in findings] == ["vague-spatial"]
    assert findings[0]["span"] == [17, 21] and findings[0]["severity"] == "warning"
    assert set(findings[0]) >= {"span", "severity", "code", "message", "suggestion"}
    assert main(["lint", "--negative", "blurry", PROMPT]) == 0
    assert capsys.readouterr().out.strip() == "no findings"


def test_lint_exit_status_is_1_on_errors(capsys):
    assert main(["lint", "--json", "--negative", "x", "   "]) == 1
    assert [f["code"] for f in json.loads(capsys.readouterr().out)] == ["empty-prompt"]
    long_prompt = " ".join(["word"] * 40)
    assert main(["lint", "--max-tokens", "10", "--negative", "x", long_prompt]) == 1
    assert "error: too-long" in capsys.readouterr().out


def test_bad_aspect_is_a_usage_error(capsys):
    try:
        code = main(["layout", "draft", "--aspect", "wide", "a cat"])
    except SystemExit as exc:  # argparse's own exit, if the dispatcher lets it through
        code = exc.code
    assert code == 2 and "not an aspect ratio" in capsys.readouterr().err


def test_a_layout_without_schema_version_is_read_as_version_1_and_verbose_says_so(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "old.json"
    path.write_text(json.dumps({"aspect": 1.7333, "subjects": [
        {"name": "red car", "keyframes": [{"t": 0, "box": [0.05, 0.4, 0.15, 0.6]}]}]}))
    run = subprocess.run([sys.executable, "-m", "shotsketch", "-v", "layout", "describe", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "The red car remains stationary at the left edge."
    assert "no schema_version; read as version 1" in run.stderr


def test_layout_draft_json_has_groups_regions_and_no_float_noise(capsys):
    assert main(["layout", "draft", "A bird flies above a forest, with clouds moving slowly in the sky."]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["schema_version"] == 2
    assert [g["name"] for g in data["groups"]] == ["clouds"] and [r["kind"] for r in data["regions"]] == ["sky"]
    numbers = [v for s in data["subjects"] + [m for g in data["groups"] for m in g["members"]]
               for k in s["keyframes"] for v in k["box"] + [k["t"]]]
    assert all(round(v, 4) == v for v in numbers)
