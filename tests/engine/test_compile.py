"""Regional compile with a sketch: guided and unguided jobs in a row compile once each, and a failed
compile costs one job its compiled blocks, not the process.

The engine compiles on CUDA only; here dynamo traces the real blocks with its "eager" backend (the
same tracing and guards, no code generation), which is what decides whether a job recompiles.
"""

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from shotsketch.core.examples import example_shots
from shotsketch.engine.events import JobFinished
from shotsketch.engine.generator import Generator
from shotsketch.engine.sources import ModelSource
from shotsketch.engine.speed import SpeedOptions


def _jobs(make_request, shot, seed):
    sketch = dict(prompt=shot.prompt, layout_json=shot.layout.to_json(), steps=2, seed=seed)
    return [make_request(**sketch, guidance_strength=1.0),  # guided
            make_request(**sketch, guidance_strength=0.0),  # sketch drawn, guidance off: maps still recorded
            make_request(prompt=f"{shot.prompt} plain", steps=2, seed=seed)]  # no sketch


def _run(gen, requests):
    finals = [gen.generate(r) for r in requests]
    for final in finals:
        assert isinstance(final, JobFinished), getattr(final, "message", final)
    return finals


def test_guided_and_unguided_jobs_in_a_row_compile_once(compiled_generator, make_request):
    gen = compiled_generator
    shots = {s.id: s for s in example_shots()}
    _run(gen, _jobs(make_request, shots["yellow_ball"], 1))  # the first of each kind compiles
    counters.clear()
    # other sketches (one subject instead of two), prompts and seeds: nothing compiles again
    finals = _run(gen, _jobs(make_request, shots["balloon_corner"], 2) + _jobs(make_request, shots["red_car_house"], 3)
                  + _jobs(make_request, shots["yellow_ball"], 4))
    assert counters["stats"]["unique_graphs"] == 0, dict(counters["stats"])
    assert all(f.recipe["speed"]["compiled"] for f in finals)
    guided = finals[0]
    assert set(guided.extras["adherence"]) == {"red balloon"}
    assert guided.extras["heatmaps"]["red balloon"].shape == (2, 64 // 32, 96 // 32)


def test_compiled_guidance_gives_the_eager_maps_and_latents(compiled_generator, demo_generator, make_request):
    shot = next(s for s in example_shots() if s.id == "red_car_house")
    req = make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=1.0, steps=2)
    eager, compiled = demo_generator.generate(req), compiled_generator.generate(req)
    assert compiled.recipe["speed"]["compiled"] and not eager.recipe["speed"]["compiled"]
    assert torch.allclose(eager.latents, compiled.latents, atol=1e-4, rtol=1e-4)
    for name, score in eager.extras["adherence"].items():
        assert compiled.extras["adherence"][name] == pytest.approx(score, abs=1e-4)


def test_a_failed_compile_runs_that_job_uncompiled_and_the_next_compiled(compiled_generator, make_request):
    gen = compiled_generator
    shot = next(s for s in example_shots() if s.id == "yellow_ball")
    plain, guided = make_request(steps=2), make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(),
                                                        guidance_strength=1.0, steps=2)
    with torch._dynamo.config.patch(recompile_limit=1):  # a second kind of job is one compile too many
        first = gen.generate(plain)
        failed_compile = gen.generate(guided)
        after = gen.generate(make_request(steps=2, seed=5))
    for final in (first, failed_compile, after):
        assert isinstance(final, JobFinished), getattr(final, "message", final)
    assert first.recipe["speed"]["compiled"] is True
    assert failed_compile.recipe["speed"]["compiled"] is False  # this job ran uncompiled ...
    assert failed_compile.extras["adherence"]  # ... with its guidance all the same
    assert gen.compiled is True and after.recipe["speed"]["compiled"] is True  # ... and the next compiled again


def test_a_step_distilled_preview_compiles_nothing_after_the_warm_up(make_request):
    """warm_up compiles the batch a distilled job runs (one row: no CFG), not CFG's two."""
    torch._dynamo.reset()
    gen = Generator(ModelSource.demo(), device="cpu", speed=SpeedOptions(compile=True, compile_backend="eager"), distilled=True)
    gen.load()
    assert gen.warm_up(width=96, height=64, frames=5)
    counters.clear()
    final = gen.generate(make_request(steps=2))
    assert isinstance(final, JobFinished) and final.recipe["speed"]["compiled"]
    assert counters["stats"]["unique_graphs"] == 0, dict(counters["stats"])


def test_streamed_blocks_run_uncompiled_without_trying(compiled_generator, make_request, caplog, monkeypatch):
    """Bench session 7: with the blocks streamed, every job's compile failed (diffusers' group-offloading
    copy is `torch.compiler.disable`d, which breaks the blocks' full graph) and the job ran again
    uncompiled. With the compile around the hooks switched off (SHOTSKETCH_STREAMED_COMPILE=0) that
    plan runs them uncompiled from the start; back on a plan that keeps the transformer, jobs compile
    again, and so do they with one model at a time (its hooks sit on the whole transformer, outside
    the compiled blocks)."""
    import logging

    monkeypatch.setenv("SHOTSKETCH_STREAMED_COMPILE", "0")

    from diffusers.hooks import apply_group_offloading

    from shotsketch.engine.generator import _remove_group_offloading
    from shotsketch.engine.memory import MemoryPlan

    gen = compiled_generator
    transformer = gen.pipeline.transformer
    apply_group_offloading(transformer, onload_device=torch.device("cpu"), offload_device=torch.device("cpu"),
                           offload_type="block_level", num_blocks_per_group=1)
    gen.memory_plan = MemoryPlan.GROUP_OFFLOAD  # as the planner leaves it on an 8-12 GiB card
    assert not gen.needs_warm_up  # nothing compiled would run
    counters.clear()
    with caplog.at_level(logging.INFO, logger="shotsketch"):
        final = gen.generate(make_request(steps=2))
    assert isinstance(final, JobFinished), getattr(final, "message", final)
    assert final.recipe["speed"]["compiled"] is False
    assert not [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert int(counters["stats"]["unique_graphs"]) == 0  # dynamo was not even asked
    _remove_group_offloading(transformer)
    gen.memory_plan = MemoryPlan.CPU  # the transformer stays where it is again
    final = gen.generate(make_request(steps=2, seed=5))
    assert isinstance(final, JobFinished) and final.recipe["speed"]["compiled"] is True
    assert int(counters["stats"]["unique_graphs"]) > 0
    gen.pipeline.enable_model_cpu_offload(device="cpu")
    gen.memory_plan = MemoryPlan.MODEL_OFFLOAD
    caplog.clear()
    final = gen.generate(make_request(steps=2, seed=6))
    assert isinstance(final, JobFinished) and final.recipe["speed"]["compiled"] is True
    assert not [r for r in caplog.records if "torch.compile failed" in r.getMessage()]


def test_streamed_blocks_compile_around_the_offloading_hooks(compiled_generator, make_request, monkeypatch, caplog):
    """By default, with the blocks streamed, they compile with graph breaks allowed (the hook's copy
    eager, the block's forward compiled), compute what the uncompiled blocks compute
    (SHOTSKETCH_STREAMED_COMPILE=0), and a second job compiles nothing new."""
    import logging

    from diffusers.hooks import apply_group_offloading

    from shotsketch.engine.memory import MemoryPlan

    gen = compiled_generator
    apply_group_offloading(gen.pipeline.transformer, onload_device=torch.device("cpu"),
                           offload_device=torch.device("cpu"), offload_type="block_level", num_blocks_per_group=1)
    gen.memory_plan = MemoryPlan.GROUP_OFFLOAD
    request = make_request(steps=2)
    monkeypatch.setenv("SHOTSKETCH_STREAMED_COMPILE", "0")
    eager = gen.generate(request)
    assert eager.recipe["speed"]["compiled"] is False
    monkeypatch.delenv("SHOTSKETCH_STREAMED_COMPILE")  # the default
    counters.clear()
    with caplog.at_level(logging.INFO, logger="shotsketch"):
        first = gen.generate(request)
    assert isinstance(first, JobFinished), getattr(first, "message", first)
    assert first.recipe["speed"]["compiled"] is True
    assert not [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert int(counters["stats"]["unique_graphs"]) > 0  # the blocks' own forward was compiled
    torch.testing.assert_close(first.latents, eager.latents, rtol=1e-4, atol=1e-4)
    counters.clear()
    second = gen.generate(make_request(steps=2, seed=9))
    assert isinstance(second, JobFinished) and second.recipe["speed"]["compiled"] is True
    assert int(counters["stats"]["unique_graphs"]) == 0


def test_the_warm_up_compiles_the_streamed_blocks_before_the_first_preview(compiled_generator, make_request, monkeypatch):
    """An 8-12 GiB card streams the blocks and (by default) compiles them around the offloading
    hooks; the app's warm-up, run while the first prompt is written, compiles them at the preview
    size, with and without a sketch, so that the first preview compiles nothing (on a 12 GiB H100:
    19.8 s before the first preview's first step, against 11.0 s uncompiled). With the streamed
    compile switched off there is nothing to warm up."""
    from diffusers.hooks import apply_group_offloading

    from shotsketch.core.examples import example_shots
    from shotsketch.engine.memory import MemoryPlan

    gen = compiled_generator
    apply_group_offloading(gen.pipeline.transformer, onload_device=torch.device("cpu"),
                           offload_device=torch.device("cpu"), offload_type="block_level", num_blocks_per_group=1)
    gen.memory_plan = MemoryPlan.GROUP_OFFLOAD
    monkeypatch.setenv("SHOTSKETCH_STREAMED_COMPILE", "0")
    assert not gen.needs_warm_up
    monkeypatch.delenv("SHOTSKETCH_STREAMED_COMPILE")
    assert gen.needs_warm_up
    assert gen.warm_up(width=96, height=64, frames=5)  # the requests' size (conftest.py)
    assert gen.memory_plan is MemoryPlan.GROUP_OFFLOAD and not gen.needs_warm_up
    counters.clear()
    plain = gen.generate(make_request(steps=2, seed=3))
    shot = next(s for s in example_shots() if s.id == "yellow_ball")
    sketched = gen.generate(make_request(prompt=shot.prompt, layout_json=shot.layout.to_json(), guidance_strength=1.0,
                                         steps=2, seed=4))
    for final in (plain, sketched):
        assert isinstance(final, JobFinished) and final.recipe["speed"]["compiled"] is True
    assert sketched.extras["adherence"]
    assert int(counters["stats"]["unique_graphs"]) == 0, dict(counters["stats"])
