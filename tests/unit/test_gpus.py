"""One GPU per job: `claim_gpu` between real processes, over slots that stand for GPUs (no GPU is
needed: the count is just a number). A claim holds its lock until the claiming process ends, so
the claims are made in child processes, never in pytest's own.
"""

import fcntl
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from i2crc_core.infra.gpus import claim_gpu

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534

# A child that runs `before`, claims one of `count` slots, prints it and runs `after`.
CLAIMER = """
import logging, os, sys, time
from i2crc_core.infra.gpus import claim_gpu
logging.basicConfig(level=logging.INFO)
{before}
slots = [f"GPU-{{i}}" for i in range({count})]
print(claim_gpu(slots, {lock_dir!r}, poll_seconds=0.05), flush=True)
{after}
"""


@pytest.fixture
def claimer():
    """Starts claiming children; kills those still running when the test ends."""
    children = []

    def start(count, lock_dir, *, before="", after="", env=None):
        lock_dir = None if lock_dir is None else str(lock_dir)
        code = CLAIMER.format(count=count, lock_dir=lock_dir, before=before, after=after)
        environment = {**os.environ, **(env or {})}
        paths = [str(ROOT), environment.get("PYTHONPATH")]
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            env=environment,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate()


def finish(child: subprocess.Popen) -> tuple[str, str]:
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    return out, err


def read_until(stream, text: str) -> None:
    for line in stream:
        if text in line:
            return
    pytest.fail(f"the child ended without saying {text!r}")


def is_locked(path: Path) -> bool:
    """Whether some process holds `path`'s lock (two opens conflict, even in one process)."""
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False  # closing the file drops the lock taken just now


def test_three_jobs_over_two_slots_never_share_one_and_the_third_waits(claimer, tmp_path):
    # Each job holds its slot for 0.5 s; they claim together, once all have started.
    jobs = [
        claimer(
            2,
            tmp_path,
            before="sys.stdin.readline()",
            after="start = time.time(); time.sleep(0.5); print(start, time.time())",
        )
        for _ in range(3)
    ]
    for job in jobs:
        job.stdin.write("go\n")
        job.stdin.flush()
    results = [finish(job) for job in jobs]

    spans = {}
    for out, _ in results:
        slot, times = out.splitlines()
        spans.setdefault(int(slot), []).append(tuple(map(float, times.split())))
    assert sorted(spans) == [0, 1]
    assert sorted(len(held) for held in spans.values()) == [1, 2]
    for held in spans.values():
        held.sort()
        assert all(end <= start for (_, end), (start, _) in zip(held, held[1:]))
    said = [err.count("all 2 GPUs are in use by other jobs; waiting") for _, err in results]
    assert sorted(said) == [0, 0, 1]  # once, by the job that waited


def test_the_slot_of_a_killed_job_is_free_again(claimer, tmp_path):
    lock = tmp_path / "gpu-GPU-0.lock"
    holder = claimer(1, tmp_path, after="time.sleep(3600)")
    assert holder.stdout.readline() == "0\n"
    assert is_locked(lock)
    assert lock.read_text() == f"{holder.pid}\n"  # for people looking at the file
    waiter = claimer(1, tmp_path)
    read_until(
        waiter.stderr,
        f"all 1 GPUs are in use by other jobs; waiting for one to be free "
        f"(lock files in {tmp_path})",
    )

    killed = time.monotonic()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    out, _ = finish(waiter)
    assert out == "0\n"
    assert time.monotonic() - killed < 5
    assert not is_locked(lock)  # the waiter has ended too


def test_a_second_claim_in_the_same_process_returns_the_slot_it_holds(claimer, tmp_path):
    out, _ = finish(
        claimer(
            3, tmp_path, after=f"print(claim_gpu(['GPU-0', 'GPU-1', 'GPU-2'], {str(tmp_path)!r}))"
        )
    )
    assert out == "0\n0\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["gpu-GPU-0.lock"]


def test_no_slots_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="at least one GPU"):
        claim_gpu([], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_lock_directory_comes_from_the_environment_and_is_open_to_all_users(claimer, tmp_path):
    lock_dir = tmp_path / "node" / "locks"
    # A umask that would keep other users out: the modes are set explicitly.
    child = claimer(2, None, before="os.umask(0o077)", env={"I2CRC_GPU_LOCK_DIR": str(lock_dir)})
    assert finish(child)[0] == "0\n"
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o1777
    assert stat.S_IMODE((lock_dir / "gpu-GPU-0.lock").stat().st_mode) == 0o666
    assert (lock_dir / "gpu-GPU-0.lock").read_text() == f"{child.pid}\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_another_users_job_shares_the_directory_and_skips_locks_it_cannot_open(claimer):
    # pytest's tmp_path is private to root; the other user must be able to reach the locks.
    with tempfile.TemporaryDirectory() as base:
        os.chmod(base, 0o755)
        lock_dir = Path(base) / "locks"
        holder = claimer(3, lock_dir, after="time.sleep(3600)")
        assert holder.stdout.readline() == "0\n"
        (lock_dir / "gpu-GPU-1.lock").touch(mode=0o600)  # a lock file the other user may not open
        # The child drops root after starting Python, whose files are only root's here.
        become_nobody = f"os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})"
        other = claimer(3, lock_dir, before=become_nobody)
        assert finish(other)[0] == "2\n"
        assert (lock_dir / "gpu-GPU-2.lock").stat().st_uid == NOBODY
        assert stat.S_IMODE((lock_dir / "gpu-GPU-2.lock").stat().st_mode) == 0o666


class _Properties:
    def __init__(self, uuid):
        self.uuid = uuid


@pytest.mark.parametrize("visible", [1, 3])
def test_a_job_claims_by_uuid_whenever_it_sees_more_than_one_gpu(monkeypatch, visible):
    """device._own_gpu on a machine faked to show `visible` GPUs: one is the job's own (a
    scheduler's allocation); of several, one is claimed through the lock of its UUID."""
    import torch

    from i2crc_core.nets import device

    claims = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda index: _Properties(f"uuid-of-card-{index}")
    )
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "fake")
    monkeypatch.setattr(device, "claim_gpu", lambda uuids: claims.append(uuids) or len(uuids) - 1)
    chosen = device._own_gpu()
    if visible == 1:
        assert chosen == torch.device("cuda", 0) and claims == []
    else:
        assert claims == [[f"uuid-of-card-{index}" for index in range(visible)]]
        assert chosen == torch.device("cuda", visible - 1)
