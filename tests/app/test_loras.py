"""The open shot's LoRAs (app/shot.py, app/loras.py): part of its request, its saved state and its
variant's content; files checked before they are taken; the window's and the CLI's requests equal."""

import json

import pytest
import torch
from safetensors.torch import save_file

from shotsketch.app import loras as lora_list
from shotsketch.app.session import AppSession
from shotsketch.app.shot import OpenShot
from shotsketch.engine.requests import MAX_LORAS, LoraChoice, LoraError


def lora_file(folder, name="style.safetensors"):
    path = folder / name
    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(2, 8),
               "transformer.blocks.0.attn1.to_q.lora_B.weight": torch.zeros(8, 2)}, str(path))
    return str(path)


@pytest.fixture
def session(library, timers):
    s = AppSession(library, call_later=timers)
    s.new_project("LoRAs")
    s.shot.set_prompt("a red car drives from left to right")
    return s


def test_the_shots_loras_go_into_its_request_with_absolute_paths(tmp_path, monkeypatch):
    path = lora_file(tmp_path)
    monkeypatch.chdir(tmp_path)
    shot = OpenShot()
    shot.set_prompt("a red car")
    assert shot.set_loras([("style.safetensors", 0.5)])
    assert shot.loras == (LoraChoice(path, 0.5),)
    assert shot.request().loras == (LoraChoice(path, 0.5),)
    assert shot.request().to_dict()["loras"] == [{"path": path, "strength": 0.5}]
    with pytest.raises(LoraError, match="not a .safetensors file"):
        shot.set_loras([("style.bin", 1.0)])
    assert shot.loras == (LoraChoice(path, 0.5),)  # unchanged by a refused list


def test_loras_are_saved_with_the_shot_and_reopened(session, library, timers, tmp_path):
    path = lora_file(tmp_path)
    shot_id = session.shot.shot_id
    session.shot.set_loras([(path, 0.8)])
    timers.run_due()  # autosave
    assert library.load_shot_state(shot_id)["loras"] == [{"path": path, "strength": 0.8}]
    session.new_shot()
    session.shot.set_loras([])
    session.open_shot(shot_id)
    assert session.shot.loras == (LoraChoice(path, 0.8),)


def test_a_state_from_before_loras_opens_without_them_and_a_damaged_list_is_said(library, timers):
    session = AppSession(library, call_later=timers)
    session.new_project("Old")
    shot_id = session.shot.shot_id
    session.new_shot()  # (its autosave would write the old shot's state over the one below)
    library.save_shot_state(shot_id, {"version": 2, "prompt": "a car", "settings": {"steps": 9}})
    session.open_shot(shot_id)
    assert session.shot.loras == () and session.shot.load_problem is None and session.shot.settings.steps == 9
    session.new_shot()
    library.save_shot_state(shot_id, {"version": 3, "prompt": "a car", "loras": [{"path": "x.ckpt", "strength": 1}]})
    session.open_shot(shot_id)
    assert session.shot.loras == ()
    assert "saved LoRAs of this shot could not be used" in session.shot.load_problem


def test_loras_are_part_of_the_variant_and_none_keeps_the_old_content(session, library, tmp_path):
    [plain] = session.generate(1)
    assert "loras" not in library.get_variant(plain.variant_id).settings  # the content variants had before LoRAs
    path = lora_file(tmp_path)
    session.shot.set_loras([(path, 0.8)])
    [styled] = session.generate(1)
    assert styled.variant_id != plain.variant_id
    assert library.get_variant(styled.variant_id).settings["loras"] == [{"path": path, "strength": 0.8}]
    assert styled.request.loras == (LoraChoice(path, 0.8),)
    assert json.loads(library.get_job(styled.id).request_json)["loras"] == [{"path": path, "strength": 0.8}]
    session.shot.set_loras([])
    [again] = session.generate(1)
    assert again.variant_id == plain.variant_id
    session.load_variant(styled.variant_id)  # Branch from here puts its LoRAs back
    assert session.shot.loras == (LoraChoice(path, 0.8),)


def test_queued_seeds_keep_the_loras(session, tmp_path):
    path = lora_file(tmp_path)
    session.shot.set_loras([(path, -0.5)])
    jobs = session.generate(3)
    assert [j.request.loras for j in jobs] == [(LoraChoice(path, -0.5),)] * 3
    assert len({j.seed for j in jobs}) == 3


def test_a_file_is_checked_before_it_is_taken(tmp_path):
    good = lora_file(tmp_path)
    assert lora_list.lora_file_problem(good) is None
    pickle_file = tmp_path / "style.ckpt"
    pickle_file.write_bytes(b"\x80\x04 a pickle")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x01")
    model = tmp_path / "model.safetensors"
    save_file({"blocks.0.attn1.to_q.weight": torch.zeros(2, 2)}, str(model))
    cases = {str(pickle_file): "not a .safetensors file", str(tmp_path / "gone.safetensors"): "does not exist",
             str(garbage): "not a valid safetensors file", str(short): "too short",
             str(model): "holds no LoRA weights", str(tmp_path): "not a .safetensors file"}
    for path, words in cases.items():
        problem = lora_list.lora_file_problem(path)
        assert problem is not None and words in problem and "\n" not in problem, (path, problem)
        with pytest.raises(LoraError, match=words):
            lora_list.added((), path)


def test_an_unreadable_file_is_refused_with_one_line(tmp_path, monkeypatch):
    path = lora_file(tmp_path)

    def refuse(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    from shotsketch.core import safetensors_header  # the one reader of safetensors headers

    monkeypatch.setattr(safetensors_header, "open", refuse, raising=False)  # (as root, chmod 0 would still read)
    problem = lora_list.lora_file_problem(path)
    assert problem == "the LoRA file style.safetensors could not be read (Permission denied)"


def test_list_edits(tmp_path):
    a, b = lora_file(tmp_path, "a.safetensors"), lora_file(tmp_path, "b.safetensors")
    loras = lora_list.added(lora_list.added((), a), b, 0.5)
    assert loras == (LoraChoice(a, 1.0), LoraChoice(b, 0.5))
    with pytest.raises(LoraError, match="in the list already"):
        lora_list.added(loras, a)
    assert lora_list.with_strength(loras, 1, 7) == (LoraChoice(a, 1.0), LoraChoice(b, 4.0))
    assert lora_list.removed(loras, 0) == (LoraChoice(b, 0.5),)
    full = tuple(LoraChoice(lora_file(tmp_path, f"l{i}.safetensors")) for i in range(MAX_LORAS))
    with pytest.raises(LoraError, match="remove one first"):
        lora_list.added(full, a)
    assert lora_list.describe(loras) == "a.safetensors x1, b.safetensors x0.5"


def test_a_moved_lora_is_pointed_at_its_new_place_keeping_its_place_and_strength(tmp_path):
    a, b = lora_file(tmp_path, "a.safetensors"), lora_file(tmp_path, "b.safetensors")
    loras = (LoraChoice(a, 0.5), LoraChoice(b, -1.0))
    moved = tmp_path / "moved"
    moved.mkdir()
    (tmp_path / "a.safetensors").rename(moved / "a2.safetensors")
    assert lora_list.is_missing(loras[0]) and not lora_list.is_missing(loras[1])
    after = lora_list.relocated(loras, 0, moved / "a2.safetensors")
    assert after == (LoraChoice(str(moved / "a2.safetensors"), 0.5), LoraChoice(b, -1.0))
    with pytest.raises(LoraError, match="b.safetensors is in the list already"):
        lora_list.relocated(loras, 0, b)
    (tmp_path / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(LoraError, match="holds no weights"):
        lora_list.relocated(loras, 0, tmp_path / "model.safetensors")
    with pytest.raises(LoraError, match="no longer in the list"):
        lora_list.relocated(loras, 2, moved / "a2.safetensors")


def test_the_window_model_and_the_cli_make_the_same_request_with_loras(session, tmp_path, monkeypatch):
    """The parity of tests/e2e/test_cli_parity.py, with LoRAs: the app's queued request and the
    CLI's (from --lora FILE:STRENGTH, a relative path) are equal."""
    from shotsketch.cli import build_parser
    from shotsketch.cli.generate import build_request

    a, b = lora_file(tmp_path, "a.safetensors"), lora_file(tmp_path, "b.safetensors")
    prompt = "a red car drives from left to right"
    session.shot.set_prompt(prompt)
    session.shot.update_settings(width=96, height=64, frames=5, steps=2, seed=7)
    session.shot.set_loras(lora_list.with_strength(lora_list.added(lora_list.added((), a), b), 1, 0.25))
    [job] = session.generate(1)
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["generate", prompt, "--width", "96", "--height", "64", "--frames", "5",
                                      "--steps", "2", "--seed", "7", "--lora", "a.safetensors",
                                      "--lora", "b.safetensors:0.25", "--out", str(tmp_path / "x.mp4")])
    cli = build_request(args, None)
    assert cli.to_dict() == job.request.to_dict()
    assert cli.loras == (LoraChoice(a, 1.0), LoraChoice(b, 0.25)) and "loras" not in dict(cli.extra)
