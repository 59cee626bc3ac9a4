"""Which GPUs get the fast-attention (FlashAttention-4) lock, from recorded nvidia-smi outputs:
Hopper (H100, H200: 9.0) and datacenter Blackwell (B200: 10.0) do; RTX 30/40/50 (8.6, 8.9, 12.0)
do not, because the app only uses FlashAttention-4 on 9.x/10.x."""

import ast
from pathlib import Path

import pytest

from shotsketch_launcher.gpu import FAST_ATTENTION_MAJORS, Backend, parse_nvidia_smi, propose_backend
from shotsketch_launcher.locks import all_locks, choose_lock, pythons_for

REPO = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).with_name("recorded")
LOCKS = REPO / "packaging" / "locks"

DATACENTER = {  # recorded file: (compute capability, backend it gets)
    "nvidia-smi-h100.csv": ((9, 0), Backend.CUDA130),
    "nvidia-smi-h200.csv": ((9, 0), Backend.CUDA130),
    "nvidia-smi-b200-580-driver.csv": ((10, 0), Backend.CUDA130),
    "nvidia-smi-b200.csv": ((10, 0), Backend.CUDA128),  # driver 575: CUDA 12.8
}
CONSUMER = {
    "nvidia-smi-rtx3090.csv": ((8, 6), Backend.CUDA130),
    "nvidia-smi-rtx3060-old-driver.csv": ((8, 6), Backend.CUDA126),
    "nvidia-smi-rtx4090.csv": ((8, 9), Backend.CUDA130),
    "nvidia-smi-rtx5090.csv": ((12, 0), Backend.CUDA130),
    "nvidia-smi-two-gpus.csv": ((12, 0), Backend.CUDA130),  # a GTX 1080 Ti beside an RTX 5090
}


@pytest.fixture(scope="module")
def released(tmp_path_factory, packaging_script):
    """A locks folder with every name the release workflow's `python packaging/make_locks.py` makes
    (it reaches the PyTorch index; the CUDA 12.8 locks are not made here)."""
    module = packaging_script("make_locks")
    folder = tmp_path_factory.mktemp("locks")
    for target in module.TARGETS:
        for python in module.PYTHONS:
            (folder / module.lock_path(target, python).name).write_text("")
    return folder


def proposal_for(name):
    return propose_backend("Linux", "x86_64", parse_nvidia_smi((RECORDED / name).read_text()), [], [])


@pytest.mark.parametrize("name", sorted(DATACENTER))
def test_hopper_and_datacenter_blackwell_get_the_fast_attention_lock(name, released):
    capability, backend = DATACENTER[name]
    proposal = proposal_for(name)
    assert proposal.gpu.compute_capability == capability
    assert proposal.backend is backend and proposal.fast_attention
    for python in pythons_for(released, "linux", backend):
        lock = choose_lock(released, "linux", backend, python, proposal.fast_attention)
        assert lock.fast_attention and lock.path.name == f"linux-{backend.value}-fast-attention-py{python.replace('.', '')}.txt"
    if backend is Backend.CUDA130:  # made here: the lock itself pins FlashAttention-4
        for python in pythons_for(LOCKS, "linux", backend):
            lock = choose_lock(LOCKS, "linux", backend, python, proposal.fast_attention)
            assert lock.fast_attention and "flash-attn-4==" in lock.path.read_text()


@pytest.mark.parametrize("name", sorted(CONSUMER))
def test_consumer_cards_get_the_plain_lock(name, released):
    capability, backend = CONSUMER[name]
    proposal = proposal_for(name)
    assert proposal.gpu.compute_capability == capability
    assert proposal.backend is backend and not proposal.fast_attention
    for python in pythons_for(released, "linux", backend):
        assert not choose_lock(released, "linux", backend, python, proposal.fast_attention).fast_attention
    if backend is Backend.CUDA130:
        for python in pythons_for(LOCKS, "linux", backend):
            lock = choose_lock(LOCKS, "linux", backend, python, proposal.fast_attention)
            assert "flash-attn-4" not in lock.path.read_text()


def test_fast_attention_is_proposed_only_where_a_fast_attention_lock_is_made(packaging_script):
    """The window says "This GPU gets FlashAttention-4 too" whenever the proposal says so: a Hopper
    GPU on a 550 driver gets CUDA 12.6, for which no fast-attention lock is made."""
    made = {(t.os, t.backend) for t in packaging_script("make_locks").TARGETS if t.fast_attention}
    h100_old = proposal_for("nvidia-smi-h100-550-driver.csv")
    assert h100_old.backend is Backend.CUDA126 and not h100_old.fast_attention
    for path in sorted(RECORDED.glob("nvidia-smi-*.csv")):
        proposal = propose_backend("Linux", "x86_64", parse_nvidia_smi(path.read_text()), [], [])
        if proposal.fast_attention:
            assert ("linux", proposal.backend.value) in made, path.name


def test_the_launcher_and_the_app_agree_on_the_architectures():
    """The launcher installs FlashAttention-4 exactly where the app would use it
    (desktop/shotsketch/engine/attention.py FLASH4_ARCHES, read without importing torch)."""
    tree = ast.parse((REPO / "desktop" / "shotsketch" / "engine" / "attention.py").read_text())
    arches = next(ast.literal_eval(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "FLASH4_ARCHES" for t in node.targets))
    assert tuple(FAST_ATTENTION_MAJORS) == tuple(arches)
