"""Where a stage runs and in which precision.

Device (`device: auto | cpu | cuda`):
1. `cpu` runs on the CPU.
2. CUDA is *usable* when this torch build has CUDA, the driver accepts it, and the first GPU's
   architecture has kernels in the build (torch 2.14.1 from PyPI: CUDA 13.0, sm_75..sm_120):
   a binary of its major version up to its minor, or PTX up to its architecture. An older GPU
   (V100 sm_70, P100 sm_60) needs PyTorch's CUDA 12.x wheels, not a driver.
3. `cuda` without usable CUDA is a one-line error saying what was found (torch's CUDA version,
   `nvidia-smi` and the driver it reports) and the way out; `auto` runs on the CPU and logs a
   warning naming the same findings, so a GPU job never trains on CPU without a word.
4. One GPU per job: a job that sees one GPU (SLURM sets `CUDA_VISIBLE_DEVICES` to the job's
   allocation) uses it; a job that sees several claims a free one with a lock file keyed on the
   GPU's UUID (`gpus.claim_gpu`), held until the process ends.

Threads (`resources.<stage>.threads`) of a training stage:
- on CUDA, one torch thread in the stage's process, which only launches kernels (and finishes
  each batch on the GPU, datasets.py), and threads - 1 DataLoader workers that load the samples,
  kept alive between epochs, with pinned memory for non-blocking copies; with one thread the
  process loads them itself;
- on the CPU, all of them compute in the stage's process, which also loads the samples: workers
  would take cores from the training's threads.

Precision (`precision: auto | bf16 | fp16 | fp32`) of the networks' forward passes:
`auto` is bf16 on GPUs of compute capability >= 8.0, fp16 below (T4, sm_75: bf16 only runs
emulated there, although `torch.cuda.is_bf16_supported()` says True), fp32 on the CPU. fp16
trains with a `GradScaler`. The losses are computed in float32 in every mode (see losses.py).
"""

import contextlib
import logging
import os

import torch

from ..infra.errors import ConfigError
from ..infra.gpus import GpuQueryError, claim_gpu, query_gpus

log = logging.getLogger(__name__)

CPU = torch.device("cpu")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
BF16_NATIVE_CAPABILITY = (8, 0)
CUDA12_WHEELS = (
    f"pip install torch=={torch.__version__.split('+')[0]} "
    "torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cu126"
)


def _nvidia_smi_report() -> str:
    """What `nvidia-smi` says about the driver and GPUs, in a few words."""
    try:
        lines = query_gpus("name,driver_version")
    except GpuQueryError as error:
        return str(error)
    name, _, driver = lines[0].rpartition(",")
    return f"nvidia-smi reports driver {driver.strip()} with {len(lines)} GPU(s) ({name.strip()})"


def cuda_problem() -> str | None:
    """Why CUDA cannot be used here and what would help, or None when it can."""
    if torch.version.cuda is None:
        return (
            f"this torch build ({torch.__version__}) has no CUDA support. Install PyPI's "
            f"torch=={torch.__version__.split('+')[0]} (CUDA 13.0), or PyTorch's CUDA 12.x "
            f"wheels: `{CUDA12_WHEELS}`"
        )
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hidden = f"; CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
        return (
            f"torch {torch.__version__} is built for CUDA {torch.version.cuda} and finds no "
            f"usable GPU; {_nvidia_smi_report()}{hidden}. Install a driver for CUDA "
            f"{torch.version.cuda}, or PyTorch's CUDA 12.x wheels of the same version: "
            f"`{CUDA12_WHEELS}`"
        )
    capability = torch.cuda.get_device_capability(0)
    arch_list = torch.cuda.get_arch_list()
    if _has_kernels(capability, arch_list):
        return None
    major, minor = capability
    name = f"GPU {torch.cuda.get_device_name(0)} (sm_{major}{minor})"
    kernels = f"the kernels of torch {torch.__version__} ({', '.join(arch_list)})"
    if capability < min(_capability(arch) for arch in arch_list):
        return (
            f"{name} is older than {kernels}; a newer driver does not help: only PyTorch's "
            f"CUDA 12.x wheels of the same version have kernels for it: `{CUDA12_WHEELS}`"
        )
    return (
        f"{name} has none of {kernels}, nor PTX it could compile; a newer PyTorch "
        "release built for this architecture is needed"
    )


def _capability(arch: str) -> tuple[int, int]:
    digits = arch.split("_", 1)[1]
    return int(digits[:-1]), int(digits[-1])


def _has_kernels(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a GPU of `capability` runs this build: a binary of its major version and no
    higher minor (sm_86 runs on sm_89), or PTX of an architecture up to its own, which the
    driver compiles on first use."""
    for arch in arch_list:
        built = _capability(arch)
        if arch.startswith("sm_") and built[0] == capability[0] and built <= capability:
            return True
        if arch.startswith("compute_") and built <= capability:
            return True
    return False


def select_device(name: str, setting: str = "config key 'device'") -> torch.device:
    """The device a GPU stage runs on (see the module docstring for the rules); `setting` is
    what errors call the choice (a command-line option outside the pipeline)."""
    if name == "cpu":
        return CPU
    problem = cuda_problem()
    if problem is None:
        return _own_gpu()
    if name == "cuda":
        raise ConfigError(
            f"{setting}: 'cuda' requested but CUDA is unusable: {problem} "
            '(docs/gpu.md §"Drivers and wheels")'
        )
    log.warning("device 'auto': no usable CUDA GPU (%s); this stage runs on the CPU", problem)
    return CPU


def _own_gpu() -> torch.device:
    """The job's GPU: the one it sees, or, where it sees several, one claimed by lock (jobs of
    profiles/local on a multi-GPU machine, or an allocation of several GPUs shared by jobs)."""
    count = torch.cuda.device_count()
    if count == 1:
        index = 0
        log.info(
            "the one visible GPU (CUDA_VISIBLE_DEVICES=%s)",
            os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        )
    else:
        index = claim_gpu([str(torch.cuda.get_device_properties(i).uuid) for i in range(count)])
    torch.cuda.set_device(index)
    device = torch.device("cuda", index)
    log.info("running on %s (%s)", device, torch.cuda.get_device_name(device))
    return device


def precision_policy(setting: str, device_type: str, capability: tuple[int, int] | None) -> str:
    """The precision `setting` means on a device; `capability` of a CUDA device, else None."""
    if device_type != "cuda":
        return "fp32" if setting == "auto" else setting
    if setting == "auto":
        return "bf16" if capability >= BF16_NATIVE_CAPABILITY else "fp16"
    return setting


def resolve_precision(setting: str, device: torch.device) -> str:
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    precision = precision_policy(setting, device.type, capability)
    if precision == "bf16" and capability is not None and capability < BF16_NATIVE_CAPABILITY:
        log.warning(
            "precision bf16 on a GPU of compute capability %d.%d runs emulated (slow); "
            "precision auto picks fp16 there",
            *capability,
        )
    log.info("precision %s (setting %s)", precision, setting)
    return precision


def autocast(device: torch.device, precision: str):
    """Mixed precision for the networks' forward passes; nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16, where small gradients would underflow; a no-op otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def prepare_model(
    model: torch.nn.Module, device: torch.device, *, training: bool
) -> torch.nn.Module:
    """Move a model to `device`; on CUDA also channels-last memory, and cuDNN autotuning for
    training only: its crops have one fixed shape, while inference meets a new shape with
    nearly every image size and would re-tune each time."""
    model = model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = training
        model = model.to(memory_format=torch.channels_last)
    return model


def set_torch_threads(threads: int) -> None:
    """The process's torch threads, with subnormal floats flushed to zero on the CPU. A dead
    channel's weights get only the weight-decay gradient and shrink until they are subnormal,
    and x86 arithmetic on subnormals is many times slower: the benchmark's DeepLab after 9,600
    Adam iterations carried 4.8 % subnormal weights and took 88 ms per step instead of 23
    (docs/benchmarks.md §"Subnormal numbers"). Set before the first parallel region, whose OpenMP
    threads inherit the setting. It changes no result that has no subnormal number in it. Both
    settings stay for the rest of the process: a Snakemake job runs one stage, but a stage called
    from a notebook leaves them set there."""
    torch.set_flush_denormal(True)
    torch.set_num_threads(threads)


def main_process_threads(device: torch.device, threads: int) -> int:
    """torch threads of a training stage's process with `threads` (module docstring)."""
    return 1 if device.type == "cuda" else threads


def loader_options(device: torch.device, threads: int) -> dict:
    """DataLoader options of a training stage with `threads` (module docstring)."""
    if device.type == "cuda":
        workers = threads - 1
        return {"num_workers": workers, "pin_memory": True, "persistent_workers": workers > 0}
    return {}
