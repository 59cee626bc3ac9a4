"""LoRAs fused into the transformer (three key layouts, strengths, switching) and step-distilled
checkpoints, on the demo model with random LoRA weights written as .safetensors files."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import save_file

from shotsketch.engine.events import JobFailed, JobFinished
from shotsketch.engine.generator import Generator
from shotsketch.engine.lora import LoraChoice, LoraError, key_layout, loras_of, read_lora
from shotsketch.engine.sources import ModelSource, distilled_schedule

RANK = 4
# (the original Wan name, diffusers' name) of every linear layer a Wan LoRA trains
TARGETS = [(f"self_attn.{o}", f"attn1.{c}") for o, c in zip("qkvo", ["to_q", "to_k", "to_v", "to_out.0"])]
TARGETS += [(f"cross_attn.{o}", f"attn2.{c}") for o, c in zip("qkvo", ["to_q", "to_k", "to_v", "to_out.0"])]
TARGETS += [("ffn.0", "ffn.net.0.proj"), ("ffn.2", "ffn.net.2")]


def _lora_file(path, transformer, layout: str, seed: int, alpha: float = RANK):
    """A random LoRA for every trained layer of `transformer`, keyed as `layout` writes it."""
    gen = torch.Generator().manual_seed(seed)
    modules = dict(transformer.named_modules())
    state = {}
    for i in range(len(transformer.blocks)):
        for wan, ours in TARGETS:
            layer = modules[f"blocks.{i}.{ours}"]
            down = torch.randn(RANK, layer.in_features, generator=gen) * 0.3
            up = torch.randn(layer.out_features, RANK, generator=gen) * 0.3
            if layout == "diffusers":
                state[f"transformer.blocks.{i}.{ours}.lora_A.weight"] = down
                state[f"transformer.blocks.{i}.{ours}.lora_B.weight"] = up
            elif layout == "kohya":  # musubi-tuner / kohya names
                name = f"lora_unet_blocks_{i}_{wan.replace('.', '_')}"
                state[f"{name}.lora_down.weight"], state[f"{name}.lora_up.weight"] = down, up
                state[f"{name}.alpha"] = torch.tensor(float(alpha))
            else:  # the original Wan / ComfyUI names
                name = f"diffusion_model.blocks.{i}.{wan}"
                state[f"{name}.lora_down.weight"], state[f"{name}.lora_up.weight"] = down, up
                state[f"{name}.alpha"] = torch.tensor(float(alpha))
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def lora_generator():
    gen = Generator(ModelSource.demo(), device="cpu")
    gen.load()
    return gen


@pytest.fixture
def files(tmp_path, lora_generator):
    tr = lora_generator.pipeline.transformer
    return {layout: _lora_file(tmp_path / f"{layout}.safetensors", tr, layout, seed=i)
            for i, layout in enumerate(("diffusers", "kohya", "wan"))}


def _weights(transformer):
    return {k: v.clone() for k, v in transformer.state_dict().items()}


def test_the_three_layouts_read_to_the_same_diffusers_keys(files):
    keys = {}
    for layout, path in files.items():
        state, found = read_lora(LoraChoice(path))
        assert found == layout
        keys[layout] = set(state)
    assert keys["diffusers"] == keys["kohya"] == keys["wan"]
    assert "transformer.blocks.1.ffn.net.2.lora_B.weight" in keys["kohya"]
    assert key_layout(["lora_unet_blocks_0_ffn_0.alpha"]) == "kohya"


def test_a_lora_changes_the_weights_by_its_strength_and_a_switch_restores_them(lora_generator, files, make_request):
    gen = lora_generator
    tr = gen.pipeline.transformer
    original = _weights(tr)
    plain = gen.generate(make_request(steps=2))
    q = "blocks.0.attn1.to_q.weight"
    state, _ = read_lora(LoraChoice(files["diffusers"]))
    delta = state[f"transformer.{q.removesuffix('.weight')}.lora_B.weight"] @ state[f"transformer.{q.removesuffix('.weight')}.lora_A.weight"]

    half = gen.generate(make_request(steps=2, extra=(("loras", ((files["diffusers"], 0.5),)),)))
    assert isinstance(half, JobFinished)
    torch.testing.assert_close(tr.state_dict()[q], original[q] + 0.5 * delta, rtol=1e-5, atol=1e-5)
    assert type(tr.blocks[0].attn1.to_q) is torch.nn.Linear  # fused: the plain modules stay (compile, FP8, fused kernels)
    assert not any("lora" in name for name in tr.state_dict())
    entry = half.recipe["loras"][0]
    with open(files["diffusers"], "rb") as fh:
        assert entry["sha256"] == hashlib.sha256(fh.read()).hexdigest()
    assert entry["strength"] == 0.5 and entry["layout"] == "diffusers" and entry["file"] == "diffusers.safetensors"
    assert not torch.allclose(half.latents, plain.latents, atol=1e-4)

    # several at once, each with its strength; the earlier one is gone, not stacked
    both = gen.generate(make_request(steps=2, extra=(("loras", (f"{files['kohya']}:1.5", f"{files['wan']}:-0.5")),)))
    assert [e["layout"] for e in both.recipe["loras"]] == ["kohya", "wan"]
    expected = original[q].clone()
    for path, strength in ((files["kohya"], 1.5), (files["wan"], -0.5)):
        s, _ = read_lora(LoraChoice(path))
        expected += strength * (s["transformer.blocks.0.attn1.to_q.lora_B.weight"] @ s["transformer.blocks.0.attn1.to_q.lora_A.weight"])
    torch.testing.assert_close(tr.state_dict()[q], expected, rtol=1e-5, atol=1e-5)

    # no LoRA: exactly the original weights and the original picture
    again = gen.generate(make_request(steps=2))
    assert "loras" not in again.recipe
    for name, value in original.items():
        assert torch.equal(tr.state_dict()[name], value), name
    assert torch.equal(again.latents, plain.latents)


def test_the_original_weights_are_kept_in_a_few_shared_buffers(lora_generator, files, make_request):
    """The originals go straight into a few CPU buffers (pinned on a GPU), not one (pinned, rounded
    up to a power of two) per layer; they are the weights as they were, and they come back exactly."""
    gen = lora_generator
    tr = gen.pipeline.transformer
    original = _weights(tr)
    gen.generate(make_request(steps=1, extra=(("loras", ((files["diffusers"], 1.0),)),)))
    kept = gen._loras._originals
    assert len(kept) > 4
    tensors = [t for pair in kept.values() for t in pair if t is not None]
    assert len({t.untyped_storage().data_ptr() for t in tensors}) == 1  # the demo model's all fit one buffer
    for name, (weight, bias) in kept.items():
        assert torch.equal(weight, original[f"{name}.weight"]), name
        assert bias is None or torch.equal(bias, original[f"{name}.bias"]), name
    gen.generate(make_request(steps=1))
    for name, value in original.items():
        assert torch.equal(tr.state_dict()[name], value), name


def test_the_same_loras_again_are_not_fused_twice(lora_generator, files, make_request, monkeypatch):
    gen = lora_generator
    req = make_request(steps=1, extra=(("loras", ((files["wan"], 1.0),)),))
    gen.generate(req)
    calls = []
    monkeypatch.setattr(gen._loras, "_set", lambda *a, **k: calls.append(1))
    second = gen.generate(req)
    assert isinstance(second, JobFinished) and calls == [] and second.recipe["loras"][0]["layout"] == "wan"
    monkeypatch.undo()
    gen.generate(make_request(steps=1))


def test_unusable_lora_files_fail_the_job_with_one_line(lora_generator, files, tmp_path, make_request):
    gen = lora_generator
    original = _weights(gen.pipeline.transformer)
    pickle_file = tmp_path / "style.ckpt"
    pickle_file.write_bytes(b"not read")
    wrong = tmp_path / "other_model.safetensors"
    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(RANK, 5120),
               "transformer.blocks.0.attn1.to_q.lora_B.weight": torch.zeros(5120, RANK)}, str(wrong))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    cases = {str(pickle_file): "safetensors only", str(tmp_path / "missing.safetensors"): "does not exist",
             str(wrong): "made for another model", str(broken): "could not be read"}
    for path, words in cases.items():
        final = gen.generate(make_request(steps=1, extra=(("loras", ((path, 1.0),)),)))
        assert isinstance(final, JobFailed) and words in final.message and "\n" not in final.message, final.message
    final = gen.generate(make_request(steps=1, extra=(("loras", ((files["wan"], 9.0),)),)))
    assert isinstance(final, JobFailed) and "between" in final.message
    for name, value in original.items():  # nothing half-applied
        assert torch.equal(gen.pipeline.transformer.state_dict()[name], value), name


def test_a_peft_saved_alpha_scales_the_product(tmp_path):
    from shotsketch.engine.lora import alpha_scale

    plain = tmp_path / "plain.safetensors"
    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(RANK, 4)}, str(plain))
    assert alpha_scale(str(plain)) == 1.0  # diffusers' own default when a file says nothing: alpha = rank
    meta = tmp_path / "meta.safetensors"
    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(RANK, 4)}, str(meta),
              metadata={"lora_adapter_metadata": json.dumps({"r": RANK, "lora_alpha": 2 * RANK})})
    assert alpha_scale(str(meta)) == 2.0


def test_lora_arguments_parse():
    assert LoraChoice.parse("style.safetensors:0.8") == LoraChoice("style.safetensors", 0.8)
    assert LoraChoice.parse("C:\\loras\\style.safetensors") == LoraChoice("C:\\loras\\style.safetensors", 1.0)
    assert LoraChoice.parse("C:\\loras\\style.safetensors:-1") == LoraChoice("C:\\loras\\style.safetensors", -1.0)

    class Req:
        extra = (("loras", [["a.safetensors", 0.5], {"path": "b.safetensors", "strength": 2}, "c.safetensors"]),)

    assert loras_of(Req()) == [LoraChoice("a.safetensors", 0.5), LoraChoice("b.safetensors", 2.0),
                               LoraChoice("c.safetensors", 1.0)]
    Req.extra = (("loras", [["a.safetensors", "loud"]]),)
    with pytest.raises(LoraError, match="must be a number"):
        loras_of(Req())


# ----------------------------------------------------------------------------- distilled checkpoints
def test_a_distilled_folder_is_recognised_where_it_says_so(tmp_path):
    assert distilled_schedule(tmp_path) is None
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanDMDPipeline"}))
    assert distilled_schedule(tmp_path) == (1000, 757, 522)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline",
                                                           "dmd_denoising_steps": [1000, 500]}))
    assert distilled_schedule(tmp_path) == (1000, 500)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    (tmp_path / "README.md").write_text("# FastWan2.2-TI2V-5B-FullAttn-Diffusers\nDMD, 3-step inference")
    assert distilled_schedule(tmp_path) == (1000, 757, 522)


def test_a_distilled_model_runs_its_three_steps_without_cfg(make_request, tmp_path):
    from shotsketch.engine.demo import build_pipeline

    pipe = build_pipeline()
    pipe.save_pretrained(tmp_path, safe_serialization=True)
    index = json.loads((tmp_path / "model_index.json").read_text())
    (tmp_path / "model_index.json").write_text(json.dumps(dict(index, _class_name="WanDMDPipeline")))
    gen = Generator(ModelSource.parse(str(tmp_path)), device="cpu")
    forwards = []
    gen.pipeline.transformer.register_forward_pre_hook(
        lambda _m, _a, kw: forwards.append(float(kw["timestep"].flatten()[0])), with_kwargs=True)
    final = gen.generate(make_request(steps=25, guidance=5.0))
    assert isinstance(final, JobFinished), getattr(final, "message", final)
    assert forwards == [1000.0, 757.0, 522.0]  # one forward a step: no CFG, the UniPC in the folder unused
    assert final.recipe["schedule"]["timesteps"] == [1000, 757, 522]
    assert final.recipe["request"]["steps"] == 3 and final.recipe["request"]["guidance"] == 1.0
    again = gen.generate(make_request(steps=25, guidance=5.0))
    assert torch.equal(final.latents, again.latents)  # the re-noising is seeded by the request
    # the person can say a folder is distilled, or that it is not
    plain = Generator(ModelSource.parse(str(tmp_path)), device="cpu", distilled=False)
    assert plain.generate(make_request(steps=2)).recipe["request"]["steps"] == 2


def test_the_cli_takes_loras_and_the_recipe_replays_them(tmp_path, lora_generator):
    from shotsketch.cli import main
    from shotsketch.cli.generate import recipe_path

    lora = _lora_file(tmp_path / "style.safetensors", lora_generator.pipeline.transformer, "kohya", seed=3)
    out = tmp_path / "clip.mp4"
    code = main(["generate", "a red car drives left", "--model", "demo", "--width", "96", "--height", "64",
                 "--frames", "5", "--steps", "2", "--lora", f"{lora}:0.5", "--out", str(out), "--quiet"])
    assert code == 0 and out.is_file()
    recipe = json.loads(recipe_path(out).read_text())
    with open(lora, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    assert recipe["loras"] == [{"file": "style.safetensors", "sha256": digest, "strength": 0.5, "layout": "kohya"}]
    again = tmp_path / "again.mp4"
    assert main(["generate", "--recipe", str(recipe_path(out)), "--model", "demo", "--out", str(again), "--quiet"]) == 0
    assert json.loads(recipe_path(again).read_text())["loras"][0]["sha256"] == digest
