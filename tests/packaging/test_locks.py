"""Choosing the lock file for an OS, backend and Python, and the large wheels it lists."""

import pytest
from pathlib import Path

LOCKS = Path(__file__).resolve().parents[2] / "packaging" / "locks"

from shotsketch_launcher.engine import wheel_fits
from shotsketch_launcher.gpu import Backend, propose_backend, parse_nvidia_smi
from shotsketch_launcher.locks import LockMissing, all_locks, available_backends, choose_lock, pythons_for


def test_the_locks_made_here_are_found():
    names = {lock.path.name for lock in all_locks(LOCKS)}
    assert {"linux-cu130-py312.txt", "linux-cu130-fast-attention-py312.txt", "linux-cpu-py311.txt"} <= names
    assert available_backends(LOCKS, "linux")[:1] == [Backend.CUDA130]
    assert Backend.CPU in available_backends(LOCKS, "linux")


def test_fast_attention_lock_only_when_asked():
    plain = choose_lock(LOCKS, "linux", Backend.CUDA130, "3.12")
    fast = choose_lock(LOCKS, "linux", Backend.CUDA130, "3.12", fast_attention=True)
    assert plain.path.name == "linux-cu130-py312.txt" and not plain.fast_attention
    assert fast.path.name == "linux-cu130-fast-attention-py312.txt"
    assert "flash-attn-4==" in fast.path.read_text() and "flash-attn-4==" not in plain.path.read_text()


def test_a_hopper_gpu_installs_the_fast_attention_lock():
    proposal = propose_backend("Linux", "x86_64", parse_nvidia_smi("NVIDIA H100, 9.0, 580.95.05, 81559"), [], [])
    lock = choose_lock(LOCKS, "linux", proposal.backend, "3.12", proposal.fast_attention)
    assert lock.path.name == "linux-cu130-fast-attention-py312.txt"


def test_python_preference_and_the_missing_ones_say_what_exists(tmp_path):
    assert pythons_for(LOCKS, "linux", Backend.CUDA130)[0] == "3.12"
    assert choose_lock(LOCKS, "linux", Backend.CPU, "3.11").path.name == "linux-cpu-py311.txt"
    with pytest.raises(LockMissing, match="3.11"):
        choose_lock(LOCKS, "linux", Backend.CPU, "3.12")
    with pytest.raises(LockMissing, match="no engine for"):
        choose_lock(tmp_path, "windows", Backend.CUDA128, "3.12")


def test_each_lock_pins_torch_and_names_its_index():
    for lock in all_locks(LOCKS):
        text = lock.path.read_text()
        assert "torch==2.13.0" in text, lock.path.name
        assert "--index-url https://pypi.org/simple" in text
        assert "file://" not in text and "/opt/" not in text and "/tmp/" not in text, lock.path.name
        if lock.backend is Backend.CPU:
            assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text


def test_large_wheels_of_the_cuda_lock_fit_its_python():
    lock = choose_lock(LOCKS, "linux", Backend.CUDA130, "3.12")
    wheels = lock.large_wheels()
    torch = [w for w in wheels if w["filename"].startswith("torch-2.13.0-")]
    assert len(torch) == 1 and "cp312" in torch[0]["filename"] and "x86_64" in torch[0]["filename"]
    assert sum(w["size"] for w in wheels) > 2_000_000_000
    assert all(w["url"].startswith("https://") and len(w["sha256"]) == 64 for w in wheels)


def test_wheel_tags():
    assert wheel_fits("torch-2.13.0-cp312-cp312-manylinux_2_28_x86_64.whl", "3.12", "x86_64")
    assert not wheel_fits("torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl", "3.12", "x86_64")
    assert not wheel_fits("torch-2.13.0-cp312-cp312-manylinux_2_28_aarch64.whl", "3.12", "x86_64")
    assert wheel_fits("nvidia_cublas-13.0-py3-none-manylinux_2_27_x86_64.whl", "3.13", "x86_64")
    assert wheel_fits("cuda_bindings-13.0-cp310-abi3-manylinux_2_28_x86_64.whl", "3.12", "x86_64")
    assert wheel_fits("torch-2.13.0+cu128-cp312-cp312-win_amd64.whl", "3.12", "AMD64")


def test_every_lock_pins_what_pyproject_asks_for():
    """A dependency added to pyproject.toml without `python packaging/make_locks.py` breaks every
    install (uv finds no such package in an offline wheelhouse); this says which lock is stale."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((LOCKS.parents[1] / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    fast = [Requirement(r) for r in project["optional-dependencies"]["fast-attention"]]
    for lock in all_locks(LOCKS):
        pinned = {}
        for line in lock.path.read_text().splitlines():
            name, sep, version = line.partition("==")
            if sep and not line.startswith((" ", "#", "-")):
                pinned[name.strip().lower().replace("_", "-")] = version.split(";")[0].strip()
        for requirement in wanted + (fast if lock.fast_attention else []):
            name = requirement.name.lower().replace("_", "-")
            assert name in pinned, f"{lock.path.name} lacks {name}: run python packaging/make_locks.py"
            version = pinned[name].split("+")[0]
            assert requirement.specifier.contains(version, prereleases=True), \
                f"{lock.path.name} pins {name}=={version}, pyproject.toml asks {requirement.specifier}"
