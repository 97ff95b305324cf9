"""Provenance: what the running process is — code, package versions, device — as plain JSON,
and how the summary reports it (`provenance_rows` for provenance.tsv, `provenance_footer` for
summary.md).

Recorded at run time (a training stage in its model's sidecar, the summary in summary.json),
never passed as a rule param: a new commit or a package upgrade must not rerun anything, but
the results must say what produced them.

Imports stay light: versions come from the installed distributions' metadata, and the CPU
capability and the GPU are read only from a torch that the caller has already loaded (the
summary stage does not import torch, see tests/unit/test_imports.py).
"""

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections import defaultdict
from importlib import metadata
from pathlib import Path

from .gpus import GpuQueryError, query_gpus

UNKNOWN = "unknown"
# Reported name -> the distributions that provide it, first found wins (OpenCV comes in four
# wheels that install the same `cv2`).
PACKAGES = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "snakemake": ("snakemake",),
    "numpy": ("numpy",),
    "opencv": (
        "opencv-contrib-python-headless",
        "opencv-python-headless",
        "opencv-contrib-python",
        "opencv-python",
    ),
    "h5py": ("h5py",),
}
CODE_DIR = Path(__file__).resolve().parent


def config_digest(config: dict) -> str:
    """sha256 of the validated config as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name, distributions in PACKAGES.items():
        versions[name] = UNKNOWN
        for distribution in distributions:
            try:
                versions[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def _git(*args) -> str | None:
    if shutil.which("git") is None:
        return None
    # Only the checkout around the code counts: GIT_DIR, GIT_INDEX_FILE and the like of the
    # calling environment would describe another one. No optional locks: a job must never
    # write the index, nor wait for someone else's git command.
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    try:
        result = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(CODE_DIR), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def git_state() -> dict:
    """The commit of the checkout this library runs from, and whether its tree differs from it
    (tracked changes or untracked files that git does not ignore); "unknown" without git or
    outside a checkout (e.g. a copy of the workflow)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain") if commit else None
    return {
        "commit": commit.strip() if commit else UNKNOWN,
        "dirty": UNKNOWN if status is None else bool(status.strip()),
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or UNKNOWN


def _nvidia_driver() -> str:
    try:
        # One driver serves every GPU of a machine: the first line says it.
        return query_gpus("driver_version")[0]
    except GpuQueryError:
        return UNKNOWN


def device_info(device=None) -> dict:
    """The CPU (model; with torch loaded, the instruction set its kernels use and its thread
    count: both change the last bits of CPU results) and, for a CUDA `device` (a torch.device),
    the GPU model, CUDA and cuDNN versions and the driver."""
    info = {"machine": platform.machine(), "cpu": cpu_model()}
    torch = sys.modules.get("torch")  # only a torch the caller loaded: never import it here
    if torch is not None:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["threads"] = torch.get_num_threads()
    if device is not None:
        info["type"] = device.type
        if device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(device)
            info["cuda"] = torch.version.cuda
            info["cudnn"] = torch.backends.cudnn.version()
            info["driver"] = _nvidia_driver()
    return info


def collect(*, config: dict | None = None, device=None) -> dict:
    """Provenance of this process: git state, package versions, device (see `device_info`),
    and with `config` the digest of the validated config."""
    record = {}
    if config is not None:
        record["config_sha256"] = config_digest(config)
    return {
        **record,
        "git": git_state(),
        "packages": package_versions(),
        "device": device_info(device),
    }


def provenance_rows(provenance: dict) -> list[list[str]]:
    """One row per recorded fact: scope (summary or a model), dotted key, value."""

    def flat(prefix, value):
        if isinstance(value, dict):
            return [row for key, item in value.items() for row in flat(f"{prefix}.{key}", item)]
        return [[prefix, str(value)]]

    rows = [["scope", "key", "value"]]
    for scope, record in [("summary", provenance["summary"]), *provenance["models"].items()]:
        rows += [[scope, *row] for key, value in record.items() for row in flat(key, value)]
    return rows


def _git_text(git: dict) -> str:
    state = {True: "uncommitted changes", False: "clean"}.get(git["dirty"], "tree state unknown")
    return f"commit `{git['commit']}` ({state})"


def counted(number: int, noun: str) -> str:
    """'1 thread', '2,048 threads': a count as the reports write it."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _device_text(device: dict) -> str:
    text = f"CPU {device['cpu']}"
    if "cpu_capability" in device:  # recorded where torch ran, i.e. by training
        text += f" ({device['cpu_capability']}, {counted(device['threads'], 'thread')})"
    if device.get("type") == "cuda":
        text = f"GPU {device['gpu']} (CUDA {device['cuda']}, driver {device['driver']}), {text}"
    return text


def provenance_footer(provenance: dict) -> str:
    """summary.md's footer: the summary's provenance, then each distinct training provenance
    with the models it trained."""
    summary = provenance["summary"]
    packages = ", ".join(f"{name} {version}" for name, version in summary["packages"].items())
    lines = [
        "## Provenance",
        "",
        f"- config sha256 `{summary['config_sha256']}`; summary made at "
        f"{_git_text(summary['git'])} on {_device_text(summary['device'])} with {packages}",
    ]
    groups = defaultdict(list)
    for model, record in provenance["models"].items():
        groups[json.dumps(record, sort_keys=True)].append(model)
    for text, models in groups.items():
        record = json.loads(text)
        same = (
            "same packages"
            if record["packages"] == summary["packages"]
            else ", ".join(f"{name} {version}" for name, version in record["packages"].items())
        )
        lines.append(
            f"- trained on {_device_text(record['device'])} at "
            f"{_git_text(record['git'])}, {same}: {', '.join(models)}"
        )
    return "\n".join(lines) + "\n"
