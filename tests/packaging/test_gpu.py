"""GPU detection and the proposed backend, from the tools' recorded outputs."""

from pathlib import Path

RECORDED = Path(__file__).with_name("recorded")

from shotsketch_launcher.gpu import (Backend, parse_nvidia_smi, parse_rocminfo, parse_wmi, propose_backend,
                                     windows_driver_to_nvidia)


def nvidia(name):
    return parse_nvidia_smi((RECORDED / name).read_text())


def propose_linux(gpus):
    return propose_backend("Linux", "x86_64", gpus, [], [])


def test_nvidia_smi_rows_are_parsed():
    (gpu,) = nvidia("nvidia-smi-h100.csv")
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.compute_capability == (9, 0)
    assert gpu.driver_version == "580.95.05"
    assert gpu.memory_mib == 81559


def test_hopper_gets_cuda13_and_fast_attention_on_linux_only():
    proposal = propose_linux(nvidia("nvidia-smi-h100.csv"))
    assert proposal.backend is Backend.CUDA130 and proposal.fast_attention
    on_windows = propose_backend("Windows", "AMD64", nvidia("nvidia-smi-h100.csv"), [], [])
    assert on_windows.backend is Backend.CUDA130 and not on_windows.fast_attention


def test_datacenter_blackwell_with_a_570_driver_gets_cuda128_and_fast_attention():
    proposal = propose_linux(nvidia("nvidia-smi-b200.csv"))
    assert proposal.backend is Backend.CUDA128 and proposal.fast_attention


def test_the_newest_of_two_gpus_decides_and_consumer_blackwell_has_no_fast_attention():
    proposal = propose_linux(nvidia("nvidia-smi-two-gpus.csv"))
    assert proposal.gpu.name == "NVIDIA GeForce RTX 5090"
    assert proposal.backend is Backend.CUDA130 and not proposal.fast_attention


def test_a_565_driver_gets_cuda126():
    assert propose_linux(nvidia("nvidia-smi-rtx3060-old-driver.csv")).backend is Backend.CUDA126


def test_pascal_stays_on_cuda126_even_with_a_new_driver():
    assert propose_linux(nvidia("nvidia-smi-gtx1060-new-driver.csv")).backend is Backend.CUDA126


def test_a_driver_too_old_for_any_build_says_to_update_it():
    proposal = propose_linux(nvidia("nvidia-smi-old-driver.csv"))
    assert proposal.backend is Backend.CPU
    assert "470.82.01" in proposal.reason and "update" in proposal.reason


def test_rocminfo_lists_the_gpu_not_the_cpu():
    (gpu,) = parse_rocminfo((RECORDED / "rocminfo-rx7900.txt").read_text())
    assert gpu.vendor == "amd" and gpu.arch == "gfx1100" and gpu.name == "Radeon RX 7900 XTX"


def test_amd_needs_the_rocm_driver():
    amd = parse_rocminfo((RECORDED / "rocminfo-rx7900.txt").read_text())
    assert propose_backend("Linux", "x86_64", [], amd, [], has_kfd=True).backend is Backend.ROCM
    without = propose_backend("Linux", "x86_64", [], amd, [], has_kfd=False)
    assert without.backend is Backend.CPU and "/dev/kfd" in without.reason


def test_windows_vendor_ids_find_the_nvidia_card_and_its_driver():
    gpus = parse_wmi((RECORDED / "wmi-nvidia-and-intel.json").read_text())
    assert [g.vendor for g in gpus] == ["intel", "nvidia"]
    proposal = propose_backend("Windows", "AMD64", [], [], gpus)
    assert proposal.backend is Backend.CUDA130
    assert proposal.gpu.driver_version == "581.29"


def test_windows_driver_numbers_map_to_nvidias():
    assert windows_driver_to_nvidia("32.0.15.8129") == "581.29"
    assert windows_driver_to_nvidia("31.0.15.5222") == "552.22"


def test_amd_on_windows_and_the_basic_display_adapter_give_cpu():
    amd = parse_wmi((RECORDED / "wmi-amd.json").read_text())
    assert amd[0].vendor == "amd"
    assert propose_backend("Windows", "AMD64", [], [], amd).backend is Backend.CPU
    assert parse_wmi((RECORDED / "wmi-basic-display.json").read_text()) == []
    assert parse_wmi("not json") == []


def test_macs():
    assert propose_backend("Darwin", "arm64", [], [], []).backend is Backend.MPS
    intel = propose_backend("Darwin", "x86_64", [], [], [])
    assert intel.backend is Backend.CPU and "Intel Mac" in intel.reason


def test_nothing_found_is_cpu():
    assert propose_backend("Linux", "x86_64", parse_nvidia_smi(""), [], []).backend is Backend.CPU
