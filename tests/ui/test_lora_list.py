"""The window's LoRA list (ui/lora_panel.py): add (.safetensors only, one line for a refusal),
strength, remove, undo; what Generate queues is what the CLI makes from --lora."""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from shotsketch.app.shot import ShotSettings
from shotsketch.engine.requests import LoraChoice


def lora_file(folder, name="style.safetensors"):
    path = folder / name
    save_file({"lora_unet_blocks_0_self_attn_q.lora_down.weight": torch.zeros(2, 8),
               "lora_unet_blocks_0_self_attn_q.lora_up.weight": torch.zeros(8, 2)}, str(path))
    return str(path)


def test_the_lora_list_adds_sets_removes_and_undoes(make_window, tmp_path):
    window = make_window()
    panel = window.lora_panel
    assert window.docks["loras"].windowTitle() == "LoRAs"
    pickle_file = tmp_path / "style.bin"
    pickle_file.write_bytes(b"\x80\x04 a pickle")
    assert not panel.add_files([str(pickle_file)])
    assert panel.problem.text() == ("Not added: The LoRA file style.bin is not a .safetensors file; Shotsketch reads "
                                    "LoRAs as safetensors only (for safety): use the .safetensors version.")
    assert window.shot.loras == () and panel.table.rowCount() == 0

    path = lora_file(tmp_path)
    assert panel.add_files([path])
    assert window.shot.loras == (LoraChoice(path, 1.0),)
    assert panel.problem.text() == "" and panel.table.rowCount() == 1
    assert panel.table.item(0, 0).text() == "style.safetensors"
    assert window.docks["loras"].windowTitle() == "LoRAs (1)"

    panel.strength_box(0).setValue(0.5)  # spinning one strength ...
    panel.strength_box(0).setValue(0.75)
    assert window.shot.loras == (LoraChoice(path, 0.75),)
    window.undo_stack.undo()  # ... is one edit
    assert window.shot.loras == (LoraChoice(path, 1.0),)
    assert panel.strength_box(0).value() == 1.0
    window.undo_stack.redo()
    assert window.shot.loras == (LoraChoice(path, 0.75),)

    panel.remove_button(0).click()
    assert window.shot.loras == () and panel.table.rowCount() == 0
    window.undo_stack.undo()
    assert window.shot.loras == (LoraChoice(path, 0.75),) and panel.table.rowCount() == 1


def test_generate_queues_the_lora_list_as_the_cli_makes_it(make_window, tmp_path, qtbot, queue_takes,
                                                           fake_engine, monkeypatch):
    from shotsketch.cli import build_parser
    from shotsketch.cli.generate import build_request

    window = make_window(engine=fake_engine)
    window.session.new_project("LoRAs")
    prompt = "a red car drives from left to right"
    window.shot.set_prompt(prompt)
    window.shot.set_settings(ShotSettings(96, 64, 5, 2, 5.0, 7))
    a, b = lora_file(tmp_path, "a.safetensors"), lora_file(tmp_path, "b.safetensors")
    assert window.lora_panel.add_files([a, b])
    window.lora_panel.strength_box(1).setValue(0.25)
    with qtbot.waitSignal(window.takeSaved, timeout=20_000):
        queue_takes(window)
    [request] = fake_engine.requests
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["generate", prompt, "--width", "96", "--height", "64", "--frames", "5",
                                      "--steps", "2", "--seed", "7", "--lora", "a.safetensors",
                                      "--lora", "b.safetensors:0.25", "--out", str(tmp_path / "x.mp4")])
    assert request.loras == (LoraChoice(a, 1.0), LoraChoice(b, 0.25))
    assert build_request(args, None).to_dict() == request.to_dict()


def test_a_lora_file_gone_since_it_was_added_stops_generate_with_one_sentence(make_window, tmp_path, fake_engine):
    window = make_window(engine=fake_engine)
    path = lora_file(tmp_path)
    assert window.lora_panel.add_files([path])
    (tmp_path / "style.safetensors").unlink()
    assert not window.generate(1)
    message = window.errors.history[-1].message
    assert message.startswith("Cannot generate yet: The LoRA file") and "does not exist" in message
    assert "\n" not in message and fake_engine.requests == []


def test_a_moved_lora_file_is_marked_and_located_as_one_undoable_edit(make_window, tmp_path, fake_engine):
    window = make_window(engine=fake_engine)
    panel = window.lora_panel
    path = lora_file(tmp_path)
    assert panel.add_files([path])
    panel.strength_box(0).setValue(0.5)
    assert panel.locate_button(0) is None  # the file is there: no Locate…
    moved = tmp_path / "moved.safetensors"
    (tmp_path / "style.safetensors").rename(moved)
    assert not window.generate(1)  # refused; the row now says which file and offers Locate…
    assert "Locate" in window.errors.history[-1].message
    assert panel.problem.text() == ("style.safetensors is not where it was added: Locate… points the row at the "
                                    "file's new place, or Remove it.")
    assert panel.locate_button(0) is not None and panel.remove_button(0) is not None

    assert panel.relocate(0, moved)
    assert window.shot.loras == (LoraChoice(str(moved), 0.5),)
    assert panel.table.item(0, 0).text() == "moved.safetensors" and panel.locate_button(0) is None
    assert panel.problem.text() == ""
    window.undo_stack.undo()
    assert window.shot.loras == (LoraChoice(path, 0.5),)
    assert panel.locate_button(0) is not None and "not where it was added" in panel.problem.text()
    window.undo_stack.redo()
    assert window.generate(1)  # taken now: the file is where the row says


def test_branching_from_a_variant_puts_its_loras_back_as_one_undoable_edit(make_window, tmp_path, qtbot,
                                                                            queue_takes, fake_engine):
    window = make_window(engine=fake_engine)
    window.session.new_project("LoRAs")
    window.shot.set_prompt("a red car")
    window.shot.set_settings(ShotSettings(96, 64, 5, 2, 5.0, 7))
    path = lora_file(tmp_path)
    assert window.lora_panel.add_files([path])
    with qtbot.waitSignal(window.takeSaved, timeout=20_000):
        queue_takes(window)
    styled = window.shot.variant_id
    window.lora_panel.remove(0)
    assert window.shot.loras == ()
    window.load_variant(styled)
    assert window.shot.loras == (LoraChoice(path, 1.0),) and window.lora_panel.table.rowCount() == 1
    window.undo_stack.undo()
    assert window.shot.loras == ()
    window.undo_stack.undo()  # the removal before it
    assert window.shot.loras == (LoraChoice(path, 1.0),)
