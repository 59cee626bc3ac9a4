"""The request's typed LoRAs (GenerationRequest.loras): checked at the door, kept in the request's
JSON (and so in the recipe and the queue), and read by loras_of beside the old extra["loras"]."""

import json
import math

import pytest

from shotsketch.engine.lora import loras_of
from shotsketch.engine.requests import (
    MAX_LORAS, GenerationRequest, LoraChoice, LoraError, RequestError, validate_request,
)


@pytest.fixture
def lora_file(tmp_path):
    path = tmp_path / "style.safetensors"
    path.write_bytes(b"weights are read by the engine, not here")
    return str(path)


def test_typed_loras_round_trip_through_the_requests_json(lora_file):
    request = GenerationRequest("a red car", loras=((lora_file, 0.75), LoraChoice(lora_file.replace("style", "motion"), -1)))
    assert request.loras == (LoraChoice(lora_file, 0.75), LoraChoice(lora_file.replace("style", "motion"), -1.0))
    data = json.loads(json.dumps(request.to_dict()))
    assert data["loras"] == [{"path": lora_file, "strength": 0.75},
                             {"path": lora_file.replace("style", "motion"), "strength": -1}]
    assert GenerationRequest.from_dict(data) == request
    assert "loras" not in data["extra"]


def test_a_request_without_loras_reads_as_before_the_field():
    """Recipes of clips without LoRAs stay as older versions wrote and read them."""
    data = GenerationRequest("a red car").to_dict()
    assert "loras" not in data
    assert GenerationRequest.from_dict(data).loras == ()


@pytest.mark.parametrize("loras, words", [
    ("style.safetensors", "must be a list"),
    ([["a.safetensors", "loud"]], "must be a number"),
    ([{"path": "a.safetensors", "weight": 1}], "unknown field"),
    ([42], "FILE[:STRENGTH]"),
])
def test_badly_typed_loras_in_json_are_refused_with_one_sentence(loras, words):
    with pytest.raises(RequestError, match=words.replace("[", r"\[")):
        GenerationRequest.from_dict({"prompt": "a", "loras": loras})


def test_a_lora_that_is_not_safetensors_is_refused_at_the_door(tmp_path):
    pickle_file = tmp_path / "style.bin"
    pickle_file.write_bytes(b"\x80\x04 a pickle")
    request = GenerationRequest("a red car", loras=((str(pickle_file), 1.0),))
    for check in (True, False):  # the name alone is enough: refused before anything is read
        with pytest.raises(LoraError, match="not a .safetensors file") as caught:
            validate_request(request, check_image=check)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("strength", [4.5, -9.0, math.inf, math.nan])
def test_a_strength_outside_the_range_is_refused(lora_file, strength):
    with pytest.raises(LoraError, match="between -4 and 4"):
        validate_request(GenerationRequest("a", loras=((lora_file, strength),)))


def test_a_handful_at_most_and_each_file_once(tmp_path, lora_file):
    many = tuple((str(tmp_path / f"l{i}.safetensors"), 1.0) for i in range(MAX_LORAS + 1))
    with pytest.raises(LoraError, match=f"at most {MAX_LORAS} LoRAs"):
        validate_request(GenerationRequest("a", loras=many), check_image=False)
    with pytest.raises(LoraError, match="given twice"):
        validate_request(GenerationRequest("a", loras=((lora_file, 1.0), (lora_file, 0.5))))


def test_a_missing_file_is_refused_when_files_are_checked(tmp_path, lora_file):
    gone = GenerationRequest("a", loras=((str(tmp_path / "gone.safetensors"), 1.0),))
    with pytest.raises(LoraError, match="does not exist"):
        validate_request(gone)
    assert validate_request(gone, check_image=False) is gone  # a queued job: the engine says it when it runs
    assert validate_request(GenerationRequest("a", loras=((lora_file, 1.0),))).loras[0].path == lora_file


def test_loras_of_reads_the_typed_field_and_the_old_extra():
    typed = GenerationRequest("a", loras=(("a.safetensors", 0.5),))
    assert loras_of(typed) == [LoraChoice("a.safetensors", 0.5)]
    old = GenerationRequest.from_dict({"prompt": "a", "extra": {"loras": [["b.safetensors", 2], "c.safetensors:0.3"]}})
    assert old.loras == ()
    assert loras_of(old) == [LoraChoice("b.safetensors", 2.0), LoraChoice("c.safetensors", 0.3)]
    assert loras_of(GenerationRequest("a")) == []
