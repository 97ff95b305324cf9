"""Whether the SLURM controller that a `--profile profiles/slurm` run submits to answers.

Without one, Snakemake's SLURM executor gets as far as its first submission and then prints
some forty lines of `sacctmgr` and `sshare` errors. The workflow asks first, when the run
starts (`onstart`, rules/common.smk), with `scontrol ping`, and stops in one line.
"""

import shutil
import subprocess

from .errors import SchedulerError

PING_TIMEOUT_S = 30
ADVICE = "run Snakemake on a login node of the cluster, or use --profile profiles/local"


def check_slurm_controller(timeout: float = PING_TIMEOUT_S) -> None:
    """Raise SchedulerError unless `scontrol ping` reports a controller UP."""
    if shutil.which("scontrol") is None:
        raise SchedulerError(
            f"executor slurm: no SLURM on this machine (scontrol not found); {ADVICE}"
        )
    try:
        result = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise SchedulerError(
            f"executor slurm: no SLURM controller answered `scontrol ping` within {timeout:g} s; "
            f"{ADVICE}"
        ) from None
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if result.returncode != 0 or not any(line.endswith(" is UP") for line in lines):
        # scontrol's last line is its conclusion ("fatal: ...", "... is DOWN").
        raise SchedulerError(
            f"executor slurm: no SLURM controller answers (`scontrol ping`: "
            f"{lines[-1] if lines else f'exit status {result.returncode}'}); {ADVICE}"
        )
