"""Defect 6: a model folder is checked whole (model_index.json's types, every weight file's
safetensors header and size) before anything loads; loading prints no library progress bars."""

from __future__ import annotations

import json
import shutil

import pytest

from shotsketch.engine.sources import ModelError, ModelSource, SourceKind, check_model_folder

WEIGHTS = "transformer/diffusion_pytorch_model.safetensors"


@pytest.fixture
def model_copy(saved_demo_folder, tmp_path):
    dest = tmp_path / "model"
    shutil.copytree(saved_demo_folder, dest)
    return dest


def _index(folder, **changes):
    path = folder / "model_index.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("changes", [
    {"_class_name": ["WanPipeline"]}, {"_class_name": {"a": 1}}, {"_class_name": None},
    {"vae": ["diffusers", ["AutoencoderKLWan"]]}, {"vae": [{"x": 1}, "AutoencoderKLWan"]},
    {"transformer_2": [["x"], "y"]}, {"extra": [["x"], None]}, {"_diffusers_version": ["0.35"]},
])
def test_odd_types_in_model_index_are_problems_not_crashes(model_copy, changes):
    _index(model_copy, **changes)
    problems = check_model_folder(model_copy)
    assert problems and all(isinstance(p, str) and "\n" not in p for p in problems)


def _loads_nothing(monkeypatch):
    import diffusers

    def refuse(*args, **kwargs):
        raise AssertionError("the weights were loaded before the folder was checked")

    monkeypatch.setattr(diffusers.WanPipeline, "from_pretrained", refuse)


@pytest.mark.parametrize("damage, expected", [
    (lambda p: p.write_bytes(b""), "is empty"),
    (lambda p: p.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{}"), "not a safetensors file"),
    (lambda p: p.write_bytes((2**62).to_bytes(8, "little") + b"{}"), "not a safetensors file"),
    (lambda p: p.write_bytes(p.read_bytes()[:-1000]), "cut short"),
    (lambda p: p.write_bytes(p.read_bytes()[:200]), "not a safetensors file"),
    (lambda p: p.write_bytes(p.read_bytes() + b"\x00" * 10), "extra bytes"),
])
def test_damaged_weights_are_named_before_anything_loads(model_copy, monkeypatch, damage, expected):
    from shotsketch.engine.generator import Generator

    damage(model_copy / WEIGHTS)
    problems = check_model_folder(model_copy)
    assert any(expected in p and "transformer/diffusion_pytorch_model.safetensors" in p for p in problems), problems
    _loads_nothing(monkeypatch)
    with pytest.raises(ModelError, match=expected):
        Generator(ModelSource(SourceKind.FOLDER, str(model_copy)), device="cpu").load()


def test_a_damaged_shard_listed_in_an_index_is_named(model_copy):
    folder = model_copy / "transformer"
    shard = "diffusion_pytorch_model-00001-of-00001.safetensors"
    (folder / "diffusion_pytorch_model.safetensors").rename(folder / shard)
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {"a": shard}}))
    (folder / shard).write_bytes((folder / shard).read_bytes()[:-10])
    assert any("cut short" in p and shard in p for p in check_model_folder(model_copy))


def test_loading_a_folder_prints_no_progress_bars(saved_demo_folder, capfd):
    from shotsketch.engine.generator import Generator

    capfd.readouterr()
    Generator(ModelSource(SourceKind.FOLDER, str(saved_demo_folder)), device="cpu").load()
    out, err = capfd.readouterr()
    assert "Loading" not in err + out and "it/s]" not in err + out, err[-500:]
