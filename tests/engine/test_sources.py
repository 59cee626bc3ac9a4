"""The real loader on folders the tests write: complete, incomplete in each way, and the hub cache."""

import json
import shutil

import numpy as np
import pytest
import torch

from shotsketch.engine.generator import Generator
from shotsketch.engine.events import JobFinished
from shotsketch.engine.sources import (
    HUB_REPO_ID, ModelError, ModelSource, SourceKind, check_model_folder, hf_cache_folder, resolve_folder,
)


@pytest.fixture
def model_copy(saved_demo_folder, tmp_path):
    dest = tmp_path / "model"
    shutil.copytree(saved_demo_folder, dest)
    return dest


def test_saved_folder_is_complete(saved_demo_folder):
    assert check_model_folder(saved_demo_folder) == []
    names = {p.name for p in (saved_demo_folder / "transformer").iterdir()}
    assert "diffusion_pytorch_model.safetensors" in names


def test_loading_from_folder_gives_the_same_frames_as_the_demo(saved_demo_folder, demo_generator, make_request):
    gen = Generator(ModelSource(SourceKind.FOLDER, str(saved_demo_folder)), device="cpu")
    gen.load()
    from_folder = gen.generate(make_request(seed=3))
    built = demo_generator.generate(make_request(seed=3))
    assert isinstance(from_folder, JobFinished)
    # the same weights: equal up to float rounding (a loaded model may take other matmul kernels)
    torch.testing.assert_close(from_folder.latents, built.latents, rtol=0, atol=1e-5)
    assert np.abs(from_folder.frames.astype(int) - built.frames).max() <= 1
    assert from_folder.recipe["model"]["kind"] == "folder"
    assert from_folder.recipe["model"]["revision"].startswith("diffusers-")
    assert "label" not in from_folder.recipe["model"]


def _edit_index(folder, **changes):
    index = json.loads((folder / "model_index.json").read_text())
    index.update(changes)
    (folder / "model_index.json").write_text(json.dumps(index))


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda f: (f / "model_index.json").unlink(), "has no model_index.json"),
        (lambda f: (f / "model_index.json").write_text("{not json"), "is not valid JSON"),
        (lambda f: shutil.rmtree(f / "transformer"), "the transformer folder is missing"),
        (lambda f: shutil.rmtree(f / "text_encoder"), "the text_encoder folder is missing"),
        (lambda f: (f / "vae" / "config.json").unlink(), "vae/config.json is missing"),
        (lambda f: (f / "vae" / "diffusion_pytorch_model.safetensors").unlink(), "vae has no .safetensors weights"),
        (lambda f: (f / "scheduler" / "scheduler_config.json").unlink(), "scheduler/scheduler_config.json is missing"),
        (lambda f: (f / "tokenizer" / "tokenizer.json").unlink(), "neither tokenizer.json nor spiece.model"),
        (lambda f: _edit_index(f, transformer=["os", "system"]), "the transformer component is os.system"),
        (lambda f: _edit_index(f, _class_name="StableDiffusionPipeline"), "not a Wan pipeline"),
        (lambda f: _edit_index(f, safety_checker=["diffusers", "Thing"]), "unexpected component 'safety_checker'"),
    ],
)
def test_each_kind_of_incomplete_folder_is_named(model_copy, damage, expected):
    damage(model_copy)
    problems = check_model_folder(model_copy)
    assert any(expected in p for p in problems), problems
    with pytest.raises(ModelError, match="cannot be used"):
        resolve_folder(ModelSource(SourceKind.FOLDER, str(model_copy)))


def test_pickle_weights_are_refused_not_loaded(model_copy):
    weights = model_copy / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.unlink()
    # A pickle that would create a file if it were ever unpickled.
    marker = model_copy / "pwned"
    import pickle

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (model_copy / "transformer" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(Evil()))
    problems = check_model_folder(model_copy)
    assert any("only pickle weights" in p and "safetensors only" in p for p in problems)
    gen = Generator(ModelSource(SourceKind.FOLDER, str(model_copy)), device="cpu")
    with pytest.raises(ModelError):
        gen.load()
    assert not marker.exists()


def test_missing_weight_shard_is_named(model_copy):
    folder = model_copy / "transformer"
    (folder / "diffusion_pytorch_model.safetensors").rename(folder / "diffusion_pytorch_model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"a": "diffusion_pytorch_model-00001-of-00002.safetensors",
                                             "b": "diffusion_pytorch_model-00002-of-00002.safetensors"}}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    problems = check_model_folder(model_copy)
    assert any("missing weight shard(s): diffusion_pytorch_model-00002-of-00002" in p for p in problems)


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    assert "does not exist" in check_model_folder(tmp_path / "nope")[0]
    f = tmp_path / "file"
    f.write_text("x")
    assert "is not a folder" in check_model_folder(f)[0]


def _fake_hub_cache(tmp_path, saved_demo_folder, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / ("models--" + HUB_REPO_ID.replace("/", "--"))
    sha = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(saved_demo_folder, repo / "snapshots" / sha)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return sha


def test_hub_cache_is_found_and_loaded_without_network(tmp_path, saved_demo_folder, monkeypatch, make_request):
    import socket

    def no_network(*_a, **_k):
        raise AssertionError("the loader tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert hf_cache_folder() is None
    sha = _fake_hub_cache(tmp_path, saved_demo_folder, monkeypatch)
    assert hf_cache_folder().name == sha
    source = ModelSource.parse(f"hf:{HUB_REPO_ID}")
    assert source.kind is SourceKind.HF_CACHE
    gen = Generator(source, device="cpu")
    final = gen.generate(make_request())
    assert isinstance(final, JobFinished)
    assert final.recipe["model"] == {"id": HUB_REPO_ID, "kind": "hf-cache", "revision": sha}


def test_hub_model_not_in_cache_says_how_to_get_it():
    with pytest.raises(ModelError, match="not in the Hugging Face cache; download it"):
        resolve_folder(ModelSource.parse(f"hf:{HUB_REPO_ID}"))


def test_parse_model_argument():
    assert ModelSource.parse("demo").is_demo
    assert ModelSource.parse("hf:a/b@rev") == ModelSource(SourceKind.HF_CACHE, "a/b", "rev")
    assert ModelSource.parse("/models/wan").kind is SourceKind.FOLDER
    with pytest.raises(ModelError):
        ModelSource.parse("hf:nonsense")


def test_download_progress_adds_up_every_file(monkeypatch, tmp_path):
    import huggingface_hub

    from shotsketch.engine.sources import download_model

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None, tqdm_class=None, cache_dir=None):
        a = tqdm_class(total=100, unit="B", disable=True)
        b = tqdm_class(total=300, unit="B", disable=True)
        a.update(50)
        b.update(100)
        a.update(50)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    seen = []
    assert download_model(progress=lambda done, total: seen.append((done, total))) == tmp_path
    assert seen == [(50, 100), (150, 400), (200, 400)]


def test_checking_a_folder_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from shotsketch.engine.sources import check_model_folder; "
            "check_model_folder('/nowhere'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("changes, expected", [
    ({"transformer_2": []}, None),
    ({"vae": [["diffusers"], "AutoencoderKLWan"]}, "the vae component is"),
    ({"vae": [None, None]}, "the vae component is"),
])
def test_malformed_model_index_entries_are_problems_not_crashes(model_copy, changes, expected):
    _edit_index(model_copy, **changes)
    problems = check_model_folder(model_copy)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_recipe_replay_uses_the_recorded_hub_revision(tmp_path, saved_demo_folder, monkeypatch, capsys):
    from shotsketch.cli import main

    sha = _fake_hub_cache(tmp_path, saved_demo_folder, monkeypatch)
    out = tmp_path / "a.mp4"
    assert main(["generate", "a kite", "--model", f"hf:{HUB_REPO_ID}", "--width", "96", "--height", "64",
                 "--frames", "5", "--steps", "2", "--out", str(out)]) == 0
    recipe_file = tmp_path / "a.mp4.json"
    recipe = json.loads(recipe_file.read_text())
    assert recipe["model"]["revision"] == sha
    assert main(["generate", "--recipe", str(recipe_file), "--out", str(tmp_path / "b.mp4")]) == 0
    recipe["model"]["revision"] = "f" * 40  # a snapshot this cache does not have
    recipe_file.write_text(json.dumps(recipe))
    capsys.readouterr()
    assert main(["generate", "--recipe", str(recipe_file), "--out", str(tmp_path / "c.mp4")]) != 0
    assert "not in the Hugging Face cache" in capsys.readouterr().err
    recipe["model"] = "demo"
    recipe_file.write_text(json.dumps(recipe))
    assert main(["generate", "--recipe", str(recipe_file), "--out", str(tmp_path / "d.mp4")]) != 0
    assert "does not say which model made it" in capsys.readouterr().err
