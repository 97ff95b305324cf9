"""profiles/default limits local GPU jobs to the GPUs of the machine, and nothing else.

Runs the real Snakemake on a one-rule workflow beside a copy of the profile; the GPUs come from
a stand-in `nvidia-smi` first on PATH or from CUDA_VISIBLE_DEVICES.
"""

import os
import re
import shutil
import subprocess

import pytest

from workflow_project import REPO, SNAKEMAKE

SNAKEFILE = """
rule job:
    output: "{name}.txt"
    resources: gpu=1
    shell: "touch {output}"
"""


@pytest.fixture
def workflow(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    shutil.copytree(REPO / "profiles" / "default", tmp_path / "profiles" / "default")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return tmp_path


def provided_gpus(workflow, *args, gpus_listed=None, visible=None) -> str | None:
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    if gpus_listed is not None:
        script = workflow / "bin" / "nvidia-smi"
        lines = "".join(f"echo 'GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i})'\n" for i in range(gpus_listed))
        script.write_text("#!/bin/sh\n" + lines)
        script.chmod(0o755)
    env["PATH"] = f"{workflow / 'bin'}{os.pathsep}/usr/bin:/bin"
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    result = subprocess.run([str(SNAKEMAKE), "a.txt", "b.txt", *args], cwd=workflow, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Using workflow specific profile profiles/default" in result.stderr
    found = re.search(r"Provided resources: .*?gpu=(?:Resource\(\"gpu\", )?(\d+)", result.stdout + result.stderr)
    return found and found.group(1)


def test_gpu_limit_is_the_number_of_gpus_nvidia_smi_lists(workflow):
    assert provided_gpus(workflow, gpus_listed=2) == "2"


def test_cuda_visible_devices_decides_when_set(workflow):
    assert provided_gpus(workflow, gpus_listed=8, visible="0,3,5") == "3"


def test_no_limit_without_gpus_so_cpu_runs_and_cluster_runs_are_unaffected(workflow):
    assert provided_gpus(workflow) is None


def test_command_line_resources_override_the_profile(workflow):
    assert provided_gpus(workflow, "--resources", "gpu=5", gpus_listed=2) == "5"
