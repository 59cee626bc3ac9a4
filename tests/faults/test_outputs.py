"""Defects 4 and 11: every file a command will write is checked before the work, and the output
name is claimed (a lock file beside it) so that a second run to the same name is refused at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from shotsketch.core.atomic import OutputTaken, claim_output, claim_path

from .cli import assert_refused_or_done, run_cli
from .conftest import count


def _generate(tmp_path: Path, out: Path, capsys, *extra: str):  # noqa: ANN202
    return run_cli(["generate", "a ball", "--model", "demo", "--out", str(out), *extra], capsys)


def test_an_existing_recipe_is_not_replaced_without_overwrite(tmp_path, capsys, no_generation):
    recipe = tmp_path / "a.mp4.json"
    recipe.write_text('{"mine": true}')
    run = _generate(tmp_path, tmp_path / "a.mp4", capsys)
    assert_refused_or_done(run)
    assert run.code == 2 and "a.mp4.json" in run.err and no_generation == []
    assert recipe.read_text() == '{"mine": true}'
    assert _generate(tmp_path, tmp_path / "a.mp4", capsys, "--overwrite").code == 0


def test_a_folder_where_the_recipe_goes_is_refused_before_the_work(tmp_path, capsys, no_generation):
    (tmp_path / "x.mp4.json").mkdir()
    for extra in ((), ("--overwrite",)):
        run = _generate(tmp_path, tmp_path / "x.mp4", capsys, *extra)
        assert_refused_or_done(run)
        assert run.code == 2 and "x.mp4.json" in run.err and no_generation == []


def test_a_name_claimed_by_a_running_command_is_refused_at_once(tmp_path, capsys, no_generation):
    out = tmp_path / "a.mp4"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim_path(out).write_text(f"{other.pid}\n")
        run = _generate(tmp_path, out, capsys)
        assert_refused_or_done(run)
        assert run.code == 2 and f"process {other.pid}" in run.err and no_generation == []
    finally:
        other.kill()
        other.wait()
    # the same claim, its owner gone: taken over, and released after the run
    run = _generate(tmp_path, out, capsys)
    assert run.code == 0 and len(no_generation) == 1
    assert not claim_path(out).exists()


def test_the_claim_is_held_during_the_work_and_released_after(tmp_path):
    out = tmp_path / "a.mp4"
    with claim_output(out) as claim:
        assert claim.read_text().strip() == str(os.getpid()) and not out.exists()
        with claim_output(out):  # this process again (the window's queue): allowed
            pass
    assert not claim_path(out).exists()


def test_two_generates_to_one_name_one_works_the_other_is_refused_at_once(tmp_path):
    out = tmp_path / "clip.mp4"
    argv = [sys.executable, "-m", "shotsketch", "generate", "a ball", "--model", "demo", "--width", "64",
            "--height", "64", "--frames", "1", "--steps", "2", "--quiet", "--out", str(out)]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not claim_path(out).exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    out1, err1 = first.communicate(timeout=300)
    count("races")
    assert first.returncode == 0, err1
    assert second.returncode == 2 and "is writing" in second.stderr and "unexpected" not in second.stderr
    assert out.exists() and Path(f"{out}.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip.mp4.json"]


def test_output_taken_names_the_process(tmp_path):
    err = OutputTaken(tmp_path / "a.mp4", 4242)
    assert "process 4242" in str(err) and "\n" not in str(err)
