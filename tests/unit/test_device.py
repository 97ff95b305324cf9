"""Device choice (with the diagnosis when CUDA is unusable) and the precision policy.

This machine has no GPU, so `select_device` meets the real "no usable CUDA" case; the
`nvidia-smi` it consults is a real script put first on PATH.
"""

import logging
import os

import pytest
import torch

from i2crc_core.infra.errors import ConfigError
from i2crc_core.method.losses import total_loss
from i2crc_core.nets.device import (
    CUDA12_WHEELS,
    autocast,
    grad_scaler,
    loader_options,
    main_process_threads,
    precision_policy,
    prepare_model,
    select_device,
    set_torch_threads,
)
from i2crc_core.nets.models import build_classifier
from i2crc_core.nets.training import optimisation_step

CPU = torch.device("cpu")
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-GPU case")


@pytest.mark.parametrize(
    ("setting", "device_type", "capability", "expected"),
    [
        ("auto", "cuda", (7, 5), "fp16"),  # T4: bf16 would run emulated
        ("auto", "cuda", (8, 0), "bf16"),  # A100
        ("auto", "cuda", (9, 0), "bf16"),  # H100
        ("auto", "cuda", (12, 0), "bf16"),
        ("auto", "cpu", None, "fp32"),
        ("fp32", "cuda", (9, 0), "fp32"),
        ("fp16", "cuda", (9, 0), "fp16"),
        ("bf16", "cuda", (7, 5), "bf16"),  # asked for explicitly: honoured, with a warning
        ("fp16", "cpu", None, "fp16"),
    ],
)
def test_precision_policy(setting, device_type, capability, expected):
    assert precision_policy(setting, device_type, capability) == expected


def fake_nvidia_smi(tmp_path, monkeypatch, output, code=0):
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_cuda_requested_with_an_old_driver_names_the_findings_and_the_way_out(
    tmp_path, monkeypatch
):
    fake_nvidia_smi(tmp_path, monkeypatch, "Tesla V100-SXM2-32GB, 535.104.05")
    with pytest.raises(ConfigError) as caught:
        select_device("cuda")
    message = str(caught.value)
    assert message.startswith("config key 'device': 'cuda' requested but CUDA is unusable: ")
    assert f"built for CUDA {torch.version.cuda}" in message
    assert "nvidia-smi reports driver 535.104.05 with 1 GPU(s) (Tesla V100-SXM2-32GB)" in message
    assert CUDA12_WHEELS in message and "\n" not in message


def test_cuda_requested_without_a_driver_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="nvidia-smi is not on PATH"):
        select_device("cuda")


def test_failing_nvidia_smi_is_reported(tmp_path, monkeypatch):
    fake_nvidia_smi(
        tmp_path,
        monkeypatch,
        "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver",
        code=9,
    )
    with pytest.raises(ConfigError, match="nvidia-smi failed \\(NVIDIA-SMI has failed"):
        select_device("cuda")


def test_auto_without_gpu_runs_on_cpu_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="i2crc_core.nets.device"):
        assert select_device("auto") == CPU
    assert "device 'auto': no usable CUDA GPU" in caplog.text and "runs on the CPU" in caplog.text


def test_cpu_is_silent(caplog):
    with caplog.at_level(logging.WARNING):
        assert select_device("cpu") == CPU
    assert caplog.text == ""


def test_cpu_path_changes_nothing():
    model = build_classifier("small", 3)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    prepared = prepare_model(model, CPU, training=True)
    assert all(torch.equal(weights[k], v) for k, v in prepared.state_dict().items())
    assert loader_options(CPU, 4) == {}
    with autocast(CPU, "fp32"):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32
    assert not grad_scaler(CPU, "bf16").is_enabled()


def test_gpu_training_threads_are_one_in_the_process_and_the_rest_workers():
    gpu = torch.device("cuda")
    assert main_process_threads(gpu, 8) == 1 and main_process_threads(CPU, 8) == 8
    assert loader_options(gpu, 8) == {
        "num_workers": 7,
        "pin_memory": True,
        "persistent_workers": True,
    }
    assert loader_options(gpu, 1) == {
        "num_workers": 0,
        "pin_memory": True,
        "persistent_workers": False,
    }


def test_training_threads_flush_subnormal_floats_to_zero():
    """Arithmetic on subnormals is many times slower on x86; a stage's threads come with them
    flushed (docs/benchmarks.md §"Subnormal numbers")."""
    tiny = torch.tensor([1e-30], dtype=torch.float32)
    assert (tiny * 1e-10).item() != 0  # 1e-40 is subnormal, kept by default
    set_torch_threads(1)
    assert torch.get_num_threads() == 1
    assert (tiny * 1e-10).item() == 0
    assert (tiny * 1e-7).item() == pytest.approx(1e-37)  # normal floats are untouched


def _fp16_steps():
    torch.manual_seed(0)
    model = build_classifier("small", 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = grad_scaler(CPU, "fp16")
    images = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    saliency = torch.rand(4, 1, 32, 32)
    losses = []
    for _ in range(3):
        with autocast(CPU, "fp16"):
            attention = model(images)
        assert attention.dtype == torch.float16
        loss, parts = total_loss(
            attention, labels, saliency, lambda_ob=0.01, lambda_bg=0.025, lambda_csd=0.1
        )
        assert loss.dtype == torch.float32 and parts.dtype == torch.float32
        optimisation_step(loss, optimizer, scaler)
        losses.append(loss.item())
    return losses, model.state_dict(), scaler


def test_fp16_with_grad_scaler_trains_finitely_and_repeats_exactly():
    losses, state, scaler = _fp16_steps()
    assert scaler.is_enabled() and all(torch.isfinite(torch.tensor(losses)))
    again, state_again, _ = _fp16_steps()
    assert losses == again
    assert all(torch.equal(state[k], state_again[k]) for k in state)


BUILD = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


def fake_gpu(monkeypatch, name, capability, arch_list=BUILD):
    """torch as it answers on a machine whose first GPU is `name`, with this build's kernels."""
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: arch_list)


@pytest.mark.parametrize(
    ("name", "capability"), [("Tesla V100-SXM2-32GB", (7, 0)), ("Tesla P100-PCIE-16GB", (6, 0))]
)
def test_a_gpu_older_than_the_build_is_told_that_only_the_cuda12_wheels_help(
    monkeypatch, name, capability
):
    from i2crc_core.nets.device import cuda_problem

    fake_gpu(monkeypatch, name, capability)
    problem = cuda_problem()
    assert f"GPU {name} (sm_{capability[0]}{capability[1]}) is older than the kernels" in problem
    assert "a newer driver does not help" in problem and CUDA12_WHEELS in problem
    assert "Install a driver" not in problem


@pytest.mark.parametrize(
    ("capability", "arch_list"),
    [
        ((8, 9), BUILD),  # L40S: sm_86 binaries run on sm_89
        ((9, 0), BUILD),
        ((13, 0), [*BUILD, "compute_120"]),  # newer than the build: PTX compiled by the driver
    ],
)
def test_gpus_with_binary_or_ptx_kernels_are_usable(monkeypatch, capability, arch_list):
    from i2crc_core.nets.device import cuda_problem

    fake_gpu(monkeypatch, "NVIDIA GPU", capability, arch_list)
    assert cuda_problem() is None


def test_a_gpu_newer_than_the_build_without_ptx_fails_up_front_in_one_line(monkeypatch):
    from i2crc_core.nets.device import select_device

    fake_gpu(monkeypatch, "NVIDIA Future", (13, 0))
    with pytest.raises(ConfigError) as caught:
        select_device("cuda")
    message = str(caught.value)
    assert "GPU NVIDIA Future (sm_130) has none of the kernels of torch" in message
    assert "a newer PyTorch release built for this architecture is needed" in message
    assert "\n" not in message
