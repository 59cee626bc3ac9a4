"""The doctor's GPU listing: `nvidia-smi topo -m` parsed from recorded output; the wire between the app
and the GPU workers; the token shards."""

import io

import numpy as np
import pytest

from shotsketch.engine.events import JobFinished, JobStep
from shotsketch.engine.parallel_gpus import describe_gpus, parse_topology, usable_counts
from shotsketch.engine.parallel_wire import WireError, event_from_message, event_message, receive, send
from shotsketch.engine.requests import GenerationRequest

# nvidia-smi 580, two H200 on one NVLink switch (tabs as nvidia-smi writes them)
TWO_NVLINK = (
    "\tGPU0\tGPU1\tNIC0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
    "GPU0\t X \tNV18\tSYS\t0-47\t0\t\tN/A\n"
    "GPU1\tNV18\t X \tSYS\t0-47\t0\t\tN/A\n"
    "NIC0\tSYS\tSYS\t X \t\t\t\t\n"
    "\n"
    "Legend:\n\n"
    "  X    = Self\n"
    "  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes (e.g., QPI/UPI)\n"
    "  NV#  = Connection traversing a bonded set of # NVLinks\n"
)
# the same, as the 2-GPU H200 machine printed it (2026-11-29): the header underlined with escape codes
TWO_H200_RECORDED = (
    "\t\x1b[4mGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m\n"
    "GPU0\t X \tNV18\t0-31\t0\t\tN/A\n"
    "GPU1\tNV18\t X \t0-31\t0\t\tN/A\n"
    "\nLegend:\n\n  X    = Self\n  NV#  = Connection traversing a bonded set of # NVLinks\n"
)
# a four-card workstation: two pairs behind PCIe switches, the pairs on different sockets
FOUR_PCIE = (
    "\tGPU0\tGPU1\tGPU2\tGPU3\tCPU Affinity\tNUMA Affinity\n"
    "GPU0\t X \tPIX\tSYS\tSYS\t0-15\t0\n"
    "GPU1\tPIX\t X \tSYS\tSYS\t0-15\t0\n"
    "GPU2\tSYS\tSYS\t X \tPXB\t16-31\t1\n"
    "GPU3\tSYS\tSYS\tPXB\t X \t16-31\t1\n"
    "\nLegend:\n  X    = Self\n"
)


@pytest.mark.parametrize("text", [TWO_NVLINK, TWO_H200_RECORDED])
def test_two_gpus_on_nvlink(text: str) -> None:
    links = parse_topology(text)
    assert [(link.first, link.second, link.code) for link in links] == [(0, 1, "NV18")]
    lines = describe_gpus([("NVIDIA H200", 140.0), ("NVIDIA H200", 140.0)], text)
    assert "GPU 0 <-> GPU 1: NVLink (18 links)" in lines
    assert any("render on 2 GPUs" in line for line in lines)
    assert not any("PCIe" in line for line in lines)


def test_four_gpus_over_pcie() -> None:
    links = {(link.first, link.second): link for link in parse_topology(FOUR_PCIE)}
    assert set(links) == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    assert links[(0, 1)].describe() == "PCIe through one switch"
    assert links[(2, 3)].code == "PXB" and "sockets" in links[(0, 2)].describe()
    lines = describe_gpus([("RTX 4090", 24.0)] * 4, FOUR_PCIE)
    assert any("2, 3, 4 GPUs" in line for line in lines)
    assert any("PCIe" in line and "smaller" in line for line in lines)


def test_no_topology_and_one_gpu() -> None:
    assert parse_topology("") == [] and parse_topology("NVIDIA-SMI has failed\n") == []
    assert describe_gpus([("A", 24.0)], None) == ["GPU 0: A, 24 GiB"]
    assert any("unknown" in line for line in describe_gpus([("A", 24.0), ("B", 24.0)], None))
    assert usable_counts(8) == [1, 2, 3, 4, 6, 8]  # 24 heads: 5 and 7 GPUs cannot split them


def test_events_cross_the_wire_with_their_arrays() -> None:
    request = GenerationRequest("a ball", width=64, height=32, frames=5)
    frames = np.arange(5 * 32 * 64 * 3, dtype=np.uint8).reshape(5, 32, 64, 3)
    heat = {"ball": np.ones((2, 1, 2), np.float32)}
    done = JobFinished("j", frames, {"device": {"gpus": 2}}, latents=np.zeros((1, 48, 2, 2, 4), np.float32),
                       heatmaps=heat, adherence={"ball": 0.75}, guidance={"missing": []})
    step = JobStep("j", 1, 4, 0.5, 1.5, np.zeros((2, 4, 3), np.uint8))
    stream = io.BytesIO()
    for event in (step, done):
        send(stream, event_message(event))
    stream.seek(0)
    got_step = event_from_message(receive(stream), request)
    got = event_from_message(receive(stream), request)
    assert got_step == step and got_step.preview.shape == (2, 4, 3)
    assert np.array_equal(got.frames, frames) and got.recipe == {"device": {"gpus": 2}}
    assert np.array_equal(got.heatmaps["ball"], heat["ball"]) and got.adherence == {"ball": 0.75}
    assert tuple(got.latents.shape) == (1, 48, 2, 2, 4)


@pytest.mark.parametrize("line", [
    b'{"kind": "event", "arrays": [{"dtype": "object", "shape": [1]}]}\n',  # no pickled objects
    b'{"kind": "event", "arrays": [{"dtype": "uint8", "shape": [1000000]}]}\n',  # cut off
    b'{"kind": "event", "fields": {"$array": 3}}\n',  # an array it did not send
    b'not json\n',
    b'',
])
def test_malformed_messages_are_refused(line: bytes) -> None:
    with pytest.raises(WireError):
        receive(io.BytesIO(line))


def test_shards_cut_as_tensor_split() -> None:
    torch = pytest.importorskip("torch")
    from shotsketch.engine.parallel import shard_rows, shard_sizes

    for tokens, parts in ((27280, 8), (12090, 4), (105, 2), (120, 2)):
        expected = [len(t) for t in torch.arange(tokens).tensor_split(parts)]
        assert shard_sizes(tokens, parts) == expected
        assert shard_rows(tokens, parts, parts - 1) == (tokens - expected[-1], tokens)


def test_gpu_count_problems_are_one_sentence() -> None:
    pytest.importorskip("torch")
    from shotsketch.engine.parallel_client import gpu_count_problem

    assert gpu_count_problem(1) is None and gpu_count_problem(2, "cpu") is None
    assert "NVIDIA" in gpu_count_problem(2, "mps")
    import torch

    if not torch.cuda.is_available():
        assert gpu_count_problem(2) == "this machine has 0 CUDA GPUs (shotsketch doctor lists them)"


def test_the_gpus_setting_is_saved_checked_and_picks_the_engine(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("PySide6")
    from shotsketch.core.settings import AppSettings, SettingsError, load_settings, save_settings
    from shotsketch.engine.parallel_client import GpuWorkers
    from shotsketch.ui.worker import generator_factory

    path = save_settings(AppSettings(gpus=2), tmp_path / "settings.json")
    assert load_settings(path).gpus == 2
    with pytest.raises(SettingsError):
        AppSettings().replace(gpus=0)
    workers = generator_factory("demo", gpus=2, device="cpu")()
    assert isinstance(workers, GpuWorkers) and workers.gpus == 2 and not workers.loaded  # started on load
    import torch

    if not torch.cuda.is_available():  # a setting this machine cannot honour renders in the app's process
        assert not isinstance(generator_factory("demo", gpus=2)(), GpuWorkers)


@pytest.mark.parametrize("parts", [2, 3])
def test_decoding_bands_of_columns_gives_the_whole_decode(parts: int) -> None:
    torch = pytest.importorskip("torch")
    from shotsketch.engine.demo import build_components
    from shotsketch.engine.parallel_decode import column_bands, decode_band, halo_columns
    from shotsketch.engine.vae_decode import FastDecoder

    vae = build_components()["vae"]
    decoder = FastDecoder(vae)
    z = torch.randn(1, 48, 2, 4, 20, generator=torch.Generator().manual_seed(0))
    whole = decoder.decode(z)
    halo = halo_columns(vae)
    assert 4 <= halo < 20

    def assembled(halo: int) -> torch.Tensor:
        return torch.cat([decode_band(decoder, z, band, 16) for band in column_bands(20, parts, halo)], dim=-1)

    assert assembled(halo).shape == whole.shape
    torch.testing.assert_close(assembled(halo), whole, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(assembled(0), whole, atol=1e-3)  # without the halo the band edges differ


def test_generate_with_several_gpus_hands_the_model_to_the_workers(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    """`shotsketch generate --gpus 2` reaches the persistent workers with the model it was given (it
    raised NameError there once); the workers are replaced by a recorder that refuses to load."""
    from shotsketch.cli import main
    from shotsketch.engine import parallel_client
    from shotsketch.engine.sources import ModelError

    seen: dict[str, object] = {}

    class Recorder:
        notice = ""

        def __init__(self, model: str, gpus: int, memory_plan: str = "auto", **kw: object) -> None:
            seen.update(model=model, gpus=gpus, memory_plan=memory_plan)

        def load(self) -> None:
            raise ModelError("recorded, not loaded")

    monkeypatch.setattr(parallel_client, "GpuWorkers", Recorder)
    code = main(["generate", "a red ball", "--model", "demo", "--gpus", "2", "--device", "cpu",
                 "--width", "96", "--height", "64", "--frames", "5", "--steps", "2",
                 "--out", str(tmp_path / "a.mp4")])
    assert code == 2
    assert seen == {"model": "demo", "gpus": 2, "memory_plan": "auto"}
    assert "recorded, not loaded" in capsys.readouterr().err
    assert not (tmp_path / "a.mp4").exists()
