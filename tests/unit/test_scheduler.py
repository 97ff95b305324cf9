"""The SLURM controller check, against stand-in `scontrol` programs on PATH (the answers of a
real one: tests/slurm runs the pipeline on a real controller, which passes the check)."""

import os
import stat

import pytest

from i2crc_core.infra.errors import SchedulerError
from i2crc_core.infra.scheduler import check_slurm_controller


@pytest.fixture
def scontrol(tmp_path, monkeypatch):
    """Install `scontrol` answering with the given shell body; PATH holds nothing else."""

    def install(body: str) -> None:
        program = tmp_path / "scontrol"
        program.write_text(f"#!/bin/sh\n{body}\n")
        program.chmod(program.stat().st_mode | stat.S_IXUSR)

    monkeypatch.setenv("PATH", str(tmp_path))
    return install


def test_a_controller_that_is_up_passes(scontrol):
    scontrol('echo "Slurmctld(primary) at node1 is UP"')
    check_slurm_controller()


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            'echo "Slurmctld(primary) at node1 is DOWN"; exit 1',
            "Slurmctld(primary) at node1 is DOWN",
        ),
        (
            'echo "scontrol: error: resolve_ctls_from_dns_srv" >&2\n'
            'echo "scontrol: fatal: Could not establish a configuration source" >&2; exit 1',
            "scontrol: fatal: Could not establish a configuration source",
        ),
        ("exit 3", "exit status 3"),
    ],
)
def test_no_controller_is_one_line_quoting_scontrol(scontrol, body, said):
    scontrol(body)
    with pytest.raises(SchedulerError) as raised:
        check_slurm_controller()
    message = str(raised.value)
    assert f"no SLURM controller answers (`scontrol ping`: {said})" in message
    assert "\n" not in message and "profiles/local" in message


def test_a_controller_that_does_not_answer_times_out(scontrol):
    scontrol("while :; do :; done")
    with pytest.raises(
        SchedulerError, match="no SLURM controller answered `scontrol ping` within 0.5 s"
    ):
        check_slurm_controller(timeout=0.5)


def test_a_machine_without_slurm_is_told_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not os.path.exists(tmp_path / "scontrol")
    with pytest.raises(SchedulerError, match="no SLURM on this machine"):
        check_slurm_controller()
