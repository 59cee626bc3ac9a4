import pytest

from shotsketch.engine.memory import GiB, DeviceChoice, JobShape, MemoryPlan, choose_plan
from shotsketch.engine.requests import (
    GenerationRequest, RequestError, nearest_frame_count, nearest_multiple, validate_request,
)
import torch


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(width=0), "width must be positive"),
        (dict(height=-32), "height must be positive"),
        (dict(width=1000), "nearest valid width is 992"),
        (dict(height=500), "nearest valid height is 512"),
        (dict(frames=16), "the nearest to 16 is 17"),
        (dict(frames=0), "4k+1"),
        (dict(steps=0), "steps must be between 1 and 200"),
        (dict(guidance=0.5), "guidance must be between 1 and 20"),
        (dict(guidance=float("nan")), "guidance must be between"),
        (dict(prompt="   "), "the prompt is empty"),
        (dict(seed=-1), "seed must be between"),
    ],
)
def test_bad_requests_say_what_to_change(changes, message):
    fields = dict(prompt="a red car", width=832, height=480, frames=17, steps=4)
    fields.update(changes)
    with pytest.raises(RequestError, match=message.replace("+", r"\+")):
        validate_request(GenerationRequest(**fields))


def test_nearest_helpers():
    assert nearest_multiple(450) == 448 and nearest_multiple(10) == 32
    assert nearest_frame_count(16) == 17 and nearest_frame_count(122) == 121


def test_request_dict_round_trip_and_checks():
    req = GenerationRequest("a", width=64, height=32, extra=(("k", 1),))
    assert GenerationRequest.from_dict(req.to_dict()) == req
    with pytest.raises(RequestError, match="unknown request field"):
        GenerationRequest.from_dict({"prompt": "a", "wdth": 3})
    with pytest.raises(RequestError, match="'steps' must be a whole number"):
        GenerationRequest.from_dict({"prompt": "a", "steps": "10"})
    with pytest.raises(RequestError, match="'width' must be a whole number"):
        GenerationRequest.from_dict({"prompt": "a", "width": True})


def _cuda(free_gib):
    return DeviceChoice("cuda", torch.bfloat16, "GPU", 80 * GiB, int(free_gib * GiB))


def test_memory_plan_follows_free_vram():
    assert choose_plan(_cuda(79)) is MemoryPlan.ALL_ON_GPU
    assert choose_plan(_cuda(23)) is MemoryPlan.TEXT_ENCODER_OFFLOAD
    assert choose_plan(_cuda(15)) is MemoryPlan.TEXT_ENCODER_OFFLOAD  # the encoder streams; the 720p decode in tiles
    assert choose_plan(_cuda(11.5)) is MemoryPlan.GROUP_OFFLOAD
    assert choose_plan(_cuda(11.5), job=JobShape(832, 480, 17)) is MemoryPlan.GROUP_OFFLOAD
    assert choose_plan(_cuda(7.5)) is MemoryPlan.GROUP_OFFLOAD
    assert choose_plan(_cuda(2), demo=True) is MemoryPlan.ALL_ON_GPU
    assert choose_plan(DeviceChoice("cpu", torch.float32, "CPU")) is MemoryPlan.CPU
    assert MemoryPlan.ALL_ON_GPU.leaner() is MemoryPlan.TEXT_ENCODER_OFFLOAD
    assert MemoryPlan.GROUP_OFFLOAD.leaner() is None
    # one model at a time is a plan chosen by hand only: out of memory steps past it and from it
    assert MemoryPlan.TEXT_ENCODER_OFFLOAD.leaner() is MemoryPlan.GROUP_OFFLOAD
    assert MemoryPlan.MODEL_OFFLOAD.leaner() is MemoryPlan.GROUP_OFFLOAD
    assert MemoryPlan.MODEL_OFFLOAD.vae_tiling and not MemoryPlan.ALL_ON_GPU.vae_tiling
    assert not MemoryPlan.TEXT_ENCODER_OFFLOAD.vae_tiling  # 24 GiB cards decode untiled (bench run 8)
