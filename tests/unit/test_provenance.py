"""Provenance: config digest, git state, versions and device of the running process, and the
training process's record in a model's sidecar (not in the model file)."""

import hashlib
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from i2crc_core.data.manifest import Manifest
from i2crc_core.infra import provenance
from i2crc_core.nets.checkpoints import save_model
from i2crc_core.nets.models import build_classifier
from i2crc_core.nets.training import Trainer, TrainingSetup


def test_config_digest_is_the_sha256_of_canonical_json():
    config = {"seed": 0, "evaluation": {"label_split": None, "cam_threshold": 0.15}}
    reordered = {"evaluation": {"cam_threshold": 0.15, "label_split": None}, "seed": 0}
    digest = provenance.config_digest(config)
    assert digest == provenance.config_digest(reordered) and len(digest) == 64
    assert digest != provenance.config_digest({**config, "seed": 1})
    canonical = '{"evaluation":{"cam_threshold":0.15,"label_split":null},"seed":0}'
    assert digest == hashlib.sha256(canonical.encode()).hexdigest()


def test_versions_of_the_pinned_packages():
    versions = provenance.package_versions()
    assert set(versions) == {
        "python",
        "torch",
        "torchvision",
        "snakemake",
        "numpy",
        "opencv",
        "h5py",
    }
    assert versions["numpy"] == __import__("numpy").__version__
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert versions["opencv"] != provenance.UNKNOWN


def test_git_state_is_unknown_outside_a_checkout_or_without_git(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "CODE_DIR", tmp_path)
    assert provenance.git_state() == {"commit": "unknown", "dirty": "unknown"}
    monkeypatch.setattr(provenance.shutil, "which", lambda name: None)
    assert provenance.git_state() == {"commit": "unknown", "dirty": "unknown"}


def test_git_state_of_a_checkout(tmp_path, monkeypatch):
    if provenance.shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    (tmp_path / "code.py").write_text("x = 1\n")
    for command in (["init", "-q"], ["add", "code.py"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", "-C", str(tmp_path), *command], check=True, env=env)
    commit = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    monkeypatch.setattr(provenance, "CODE_DIR", tmp_path)
    assert provenance.git_state() == {"commit": commit, "dirty": False}
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.git_state() == {"commit": commit, "dirty": True}


def test_without_torch_loaded_no_torch_is_imported():
    code = (
        "import json, sys; from i2crc_core.infra import provenance; "
        "record = provenance.collect(config={'seed': 0}); "
        "print(json.dumps(['torch' in sys.modules, record['device']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    torch_loaded, device = json.loads(result.stdout)
    assert not torch_loaded
    assert device["cpu"] and "cpu_capability" not in device


def test_with_torch_the_cpu_capability_and_threads():
    device = provenance.device_info(torch.device("cpu"))
    assert device["type"] == "cpu"
    assert device["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert device["threads"] == torch.get_num_threads()


def test_a_cuda_device_records_gpu_cuda_and_driver(monkeypatch):
    fake = SimpleNamespace(
        backends=SimpleNamespace(
            cpu=SimpleNamespace(get_cpu_capability=lambda: "AVX2"),
            cudnn=SimpleNamespace(version=lambda: 91000),
        ),
        get_num_threads=lambda: 4,
        cuda=SimpleNamespace(get_device_name=lambda device: "NVIDIA H100 80GB HBM3"),
        version=SimpleNamespace(cuda="13.0"),
    )
    monkeypatch.setitem(sys.modules, "torch", fake)
    monkeypatch.setattr(provenance, "_nvidia_driver", lambda: "580.65.06")
    device = provenance.device_info(SimpleNamespace(type="cuda"))
    del device["machine"], device["cpu"]
    assert device == {
        "cpu_capability": "AVX2",
        "threads": 4,
        "type": "cuda",
        "gpu": "NVIDIA H100 80GB HBM3",
        "cuda": "13.0",
        "cudnn": 91000,
        "driver": "580.65.06",
    }


def test_provenance_goes_to_the_sidecar_not_the_model_file(tmp_path):
    save_model(tmp_path / "model.pt", build_classifier("small", 2), provenance={"git": "x"})
    assert json.loads((tmp_path / "model.json").read_text())["provenance"] == {"git": "x"}
    assert "provenance" not in torch.load(tmp_path / "model.pt", weights_only=True)


def test_a_trained_model_records_the_process_that_trained_it(tmp_path):
    manifest = Manifest(
        root=str(tmp_path),
        image_dir="i",
        mask_dir="m",
        split_dir="s",
        num_classes=2,
        class_names=["a", "b"],
        ids={"train": ["x"], "val": []},
        image_labels={"train": {"x": [1]}, "val": {}},
    )
    setup = TrainingSetup({"lr": 0.1}, 0, 1, torch.device("cpu"), "fp32", manifest)
    trainer = Trainer(setup, build_classifier("small", 2), *[None] * 7)
    trainer.save(tmp_path / "model.pt", input_size=32, labels="image-level")
    record = json.loads((tmp_path / "model.json").read_text())["provenance"]
    assert record["device"]["type"] == "cpu"
    assert record["device"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["packages"] == provenance.package_versions()
    assert set(record["git"]) == {"commit", "dirty"} and "config_sha256" not in record
