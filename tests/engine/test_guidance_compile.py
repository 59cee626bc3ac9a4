"""Compiled blocks with a sketch, per guidance path: after the app's warm-up (the unguided forward and
one guided step) no preview compiles anything, a strength-0 sketch included; jobs of every kind in a
row compile once per kind, and a strength-0 or partly guided job runs the guided job's graph.

As in tests/engine/test_compile.py, dynamo traces the real blocks with its "eager" backend: the same
tracing and guards as on the GPU, which decide whether a job recompiles."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from shotsketch.core.examples import example_shots
from shotsketch.engine import guidance as g
from shotsketch.engine.events import JobFinished
from shotsketch.engine.guidance import FOLDED, MASK, GuidanceSettings


def _graphs() -> int:
    return int(counters["stats"]["unique_graphs"])


def _run(gen, request, settings=None):  # noqa: ANN001, ANN202
    if settings is not None:
        gen.layout_guidance.settings = settings
    final = gen.generate(request)
    assert isinstance(final, JobFinished), getattr(final, "message", final)
    assert final.recipe["speed"]["compiled"]
    return final


def _sketch(make_request, shot_id: str, strength: float, seed: int):  # noqa: ANN001, ANN202
    shot = next(s for s in example_shots() if s.id == shot_id)
    return make_request(prompt=f"{shot.prompt} {seed}", layout_json=shot.layout.to_json(), guidance_strength=strength,
                        steps=2, seed=seed)


@pytest.mark.parametrize("path", [FOLDED, MASK])
def test_no_preview_compiles_after_the_warm_up_strength_0_included(compiled_generator, make_request, monkeypatch, path):
    gen = compiled_generator
    monkeypatch.setenv(g.PATH_ENV, path)  # the app's settings leave the path to the environment
    # the requests' size (tests/engine/conftest.py: 96x64x5) warmed up; the app's is 832x480x17
    assert gen.warm_up(width=96, height=64, frames=5)
    assert gen.layout_guidance.last_state.folded is (path == FOLDED)
    counters.clear()
    guided = _run(gen, _sketch(make_request, "yellow_ball", 1.0, 1))
    assert _graphs() == 0, dict(counters["stats"])
    strength_0 = _run(gen, _sketch(make_request, "red_car_house", 0.0, 2))  # maps recorded, no bias
    assert _graphs() == 0, dict(counters["stats"])  # compiled one more graph before: the processor took another branch
    assert strength_0.extras["adherence"] and strength_0.extras["guidance"]["enabled"] is False
    # guided steps 2-3 of 4, maps recorded at every step: the unbiased steps run the same graph
    windowed = _run(gen, _sketch(make_request, "balloon_corner", 1.0, 3), GuidanceSettings(start=0.5))
    unrecorded = _run(gen, _sketch(make_request, "balloon_corner", 1.0, 4), GuidanceSettings(record=False))
    _run(gen, make_request(prompt="a plain prompt", steps=2, seed=5))
    assert _graphs() == 0, dict(counters["stats"])
    assert guided.extras["adherence"] and windowed.extras["adherence"] and "adherence" not in unrecorded.extras


def test_jobs_of_both_paths_in_a_row_compile_once_per_path(compiled_generator, make_request):
    gen = compiled_generator
    graphs = {}
    for path in (FOLDED, MASK):
        settings = GuidanceSettings(path=path)
        before = _graphs()
        _run(gen, _sketch(make_request, "yellow_ball", 1.0, 1), settings)
        graphs[path] = _graphs() - before
        _run(gen, _sketch(make_request, "yellow_ball", 0.0, 1), settings)  # strength 0: the guided graph
        assert _graphs() - before == graphs[path], (path, dict(counters["stats"]))
    _run(gen, make_request(prompt="a plain prompt", steps=2, seed=1))
    assert all(n >= 1 for n in graphs.values()), graphs  # each path compiled its own variant of the blocks
    counters.clear()
    # other sketches (one subject, two), strengths, prompts and seeds, the paths alternating
    for seed, shot_id in enumerate(["balloon_corner", "red_car_house", "yellow_ball"], start=2):
        for path in (MASK, FOLDED):
            settings = GuidanceSettings(path=path)
            for strength in (1.0, 0.0, 0.5):
                final = _run(gen, _sketch(make_request, shot_id, strength, seed), settings)
                assert gen.layout_guidance.last_state.folded is (path == FOLDED)
                assert final.extras["heatmaps"]
            _run(gen, make_request(prompt=f"plain {seed}", steps=2, seed=seed))
    assert _graphs() == 0, dict(counters["stats"])
