"""profiles/local limits local GPU jobs to the GPUs of the machine; cluster profiles layer
without interference.

Runs the real Snakemake on a one-rule workflow beside a copy of the profile; the GPUs come from
a stand-in `nvidia-smi` first on PATH or from CUDA_VISIBLE_DEVICES.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.helpers.workflow_project import REPO, SNAKEMAKE

SNAKEFILE = """
rule job:
    output: "{name}.txt"
    resources: gpu=1
    shell: "touch {output}"
"""


@pytest.fixture
def workflow(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    shutil.copytree(REPO / "profiles" / "local", tmp_path / "profiles" / "local")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return tmp_path


def provided_gpus(workflow, *args, gpus_listed=None, visible=None) -> str | None:
    env = {key: value for key, value in os.environ.items() if key != "CUDA_VISIBLE_DEVICES"}
    if gpus_listed is not None:
        script = workflow / "bin" / "nvidia-smi"
        lines = "".join(
            f"echo 'GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-{i})'\n" for i in range(gpus_listed)
        )
        script.write_text("#!/bin/sh\n" + lines)
        script.chmod(0o755)
    env["PATH"] = f"{workflow / 'bin'}{os.pathsep}/usr/bin:/bin"
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    result = subprocess.run(
        [str(SNAKEMAKE), "a.txt", "b.txt", "--profile", "profiles/local", *args],
        cwd=workflow,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Using profile profiles/local" in result.stderr
    found = re.search(
        r"Provided resources: .*?gpu=(?:Resource\(\"gpu\", )?(\d+)", result.stdout + result.stderr
    )
    return found and found.group(1)


def test_gpu_limit_is_the_number_of_gpus_nvidia_smi_lists(workflow):
    assert provided_gpus(workflow, gpus_listed=2) == "2"


def test_cuda_visible_devices_decides_when_set(workflow):
    assert provided_gpus(workflow, gpus_listed=8, visible="0,3,5") == "3"


def test_no_limit_without_gpus_so_cpu_runs_and_cluster_runs_are_unaffected(workflow):
    assert provided_gpus(workflow) is None


def test_command_line_resources_override_the_profile(workflow):
    assert provided_gpus(workflow, "--resources", "gpu=5", gpus_listed=2) == "5"


def effective_options(*argv) -> dict:
    """The options a Snakemake started in the repository with `argv` would run with: the real
    command-line parser, profiles (and any workflow profile it finds) applied."""
    code = (
        "import json, sys; from snakemake.cli import parse_args; "
        "print(json.dumps(vars(parse_args(sys.argv[1:])[1]), default=str))"
    )
    result = subprocess.run(
        [str(SNAKEMAKE.parent / "python"), "-c", code, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_site_profile_layered_on_the_slurm_profile_is_what_runs(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "profile.yaml").write_text(
        "jobs: 7\nkeep-going: true\nprintshellcmds: false\nresources: [gpu=8]\nlatency-wait: 5\n"
    )
    options = effective_options("--profile", "profiles/slurm", "--profile", str(site))
    assert options["executor"] == "slurm"
    assert options["jobs"] == 7 and options["keep_going"] is True
    assert options["printshellcmds"] is False and options["latency_wait"] == 5
    assert re.search(r"gpu\W+8", options["resources"])
    assert options["slurm_requeue"] is True, "the slurm profile's own keys stay"


def test_no_profile_is_applied_behind_the_users_back():
    options = effective_options()
    assert options["printshellcmds"] is False and options["keep_going"] is False
    assert options["resources"] == "{}"
