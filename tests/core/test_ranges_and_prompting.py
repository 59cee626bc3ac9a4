"""One table of ranges (core/ranges.py) read by Settings, validation and stored values (defect 5),
and the prompt composition moved out of the window (core/prompting.py)."""

import json

import pytest

from shotsketch.core.settings import AppSettings, SettingsError, load_settings, settings_path


def test_a_stored_layout_strength_outside_the_range_is_clamped_with_a_log_line(caplog):
    """Defect 5: Settings saved 5.0 while the slider showed 3.0, and generation used 5.0."""
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"layout_guidance_strength": 5.0, "steps": 30}))
    with caplog.at_level("WARNING"):
        settings = load_settings()
    assert settings.layout_guidance_strength == 3.0  # the slider's top, the one range's top
    assert settings.steps == 30
    assert "layout guidance strength 5.0 is outside" in caplog.text
    assert path.exists()  # clamped on load, the file kept as it was


def test_settings_and_requests_refuse_what_the_slider_cannot_show():
    from shotsketch.engine.requests import GenerationRequest, RequestError, validate_request

    with pytest.raises(SettingsError, match="layout guidance strength must be between 0 and 3"):
        AppSettings().replace(layout_guidance_strength=5.0)
    with pytest.raises(RequestError, match="layout guidance strength must be between 0 and 3"):
        validate_request(GenerationRequest(prompt="a", guidance_strength=5.0))


@pytest.mark.parametrize("name, value, expected", [
    ("frames", 16, 17), ("frames", 999, 241), ("width", 450, 448), ("width", 5, 32), ("guidance", 0.0, 1.0),
    ("seed", -3, 0), ("seed", 2**70, 2**64 - 1), ("steps", "many", 25),
])
def test_clamp_brings_a_value_onto_its_range_and_grid(name, value, expected):
    from shotsketch.core.ranges import RANGES, clamp

    assert clamp(name, value) == expected
    assert RANGES[name].contains(expected)


def test_compose_prompt_lives_in_core_and_the_window_reads_it_there():
    from shotsketch.core.prompting import compose_prompt, final_prompt, negative_or_default
    from shotsketch.core.lint import DEFAULT_NEGATIVE

    clause = "The red car moves from the left edge to the right edge."
    assert compose_prompt("A red car on a road", clause) == f"A red car on a road. {clause}"
    assert compose_prompt("x. " + clause, clause) == "x. " + clause  # already said: not twice
    assert final_prompt("anything", None, "my own words") == "my own words"
    assert negative_or_default("  ") == DEFAULT_NEGATIVE
