"""A real single-node SLURM cluster on localhost, for tests.

    python tests/slurm/cluster.py up DIR     # install if needed, configure, start
    python tests/slurm/cluster.py down DIR   # stop what `up DIR` started

or from Python: `cluster = Cluster(DIR); cluster.up(); ...; cluster.down()`.

Everything the cluster writes lives under DIR: slurm.conf, gres.conf and cgroup.conf, daemon
logs, state and spool directories, two fake GPU device files, client wrappers (below), and the
PIDs of the daemons it started (DIR/pids.json). Only its munged, which runs as user munge, keeps
its socket, PID, seed and log files in munge's own directories (/run/munge/i2crc-<hash of
DIR>.socket, ...). Each cluster has its own munged, slurmctld, slurmd and ports, so two can run
side by side. Needs root (daemons, mknod) and, if Slurm is not installed yet, apt-get
(Debian/Ubuntu). The daemons run in the foreground of their own sessions, without systemd, and
are stopped by PID.

How clients find the cluster: through `Cluster.env()`, which sets SLURM_CONF=DIR/slurm.conf
and puts DIR/bin first on PATH. DIR/bin holds wrappers of the client commands that set
SLURM_CONF themselves: inside a job, Snakemake's jobstep executor removes every SLURM_*
variable before its nested `srun`, which would otherwise look for /etc/slurm/slurm.conf. On a
real cluster that file exists (or slurmd's configless cache does); here nothing outside DIR is
written except, if needed, the host name in /etc/hosts (and /etc/munge/munge.key if missing).

Facts this relies on (Slurm 22.05 on Debian 12, a container without systemd or cgroups):

* proctrack/linuxproc and task/none need no cgroups; select/cons_tres schedules GRES;
* SlurmctldHost/NodeName must be the short host name and resolve;
* CPUs, topology and RealMemory come from `slurmd -C`: a node that claims more is INVAL;
* GPUs are faked with two character devices (the numbers of /dev/null) declared in gres.conf
  with AutoDetect=off; a node without GPUs rejects `--gpus=1`;
* there is no slurmdbd: `sacct` exists but says accounting is disabled, so Snakemake's executor
  must poll with `squeue`, which sees a finished job only for MinJobAge seconds. MinJobAge is an
  hour here: more than the executor's longest status-check interval (180 s) and more than
  3 x its init seconds, and long enough for `scontrol show job` to show every job of a test.
"""

import argparse
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ["munge", "slurmctld", "slurmd", "slurm-client"]
NEEDED_PROGRAMS = [
    "munged",
    "munge",
    "unmunge",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sinfo",
    "scontrol",
    "scancel",
]
SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
MUNGE_KEY = Path("/etc/munge/munge.key")
CLIENTS = ["srun", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "sacct"]
PARTITIONS = ("cpu", "gpu")  # both hold the one node; "cpu" is the default partition
GPUS = 2
MIN_JOB_AGE = 3600
HARDWARE_KEYS = (
    "CPUs",
    "Boards",
    "SocketsPerBoard",
    "CoresPerSocket",
    "ThreadsPerCore",
    "RealMemory",
)


class ClusterError(RuntimeError):
    pass


def which(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(SBIN))


def missing_programs() -> list[str]:
    return [program for program in NEEDED_PROGRAMS if which(program) is None]


def can_run() -> str | None:
    """None if a cluster can be started here, else the reason why not."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (daemons, mknod, apt-get)"
    if missing_programs() and which("apt-get") is None:
        missing = ", ".join(missing_programs())
        return f"Slurm is not installed ({missing} missing) and apt-get is unavailable"
    return None


def _run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise ClusterError(
            f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def install() -> None:
    """apt-get install the Slurm packages if a program is missing, without starting services."""
    if not missing_programs():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # The packages' scripts would start the daemons with the packaged configuration: a
    # policy-rc.d that denies every start keeps them quiet. Only ours is removed afterwards.
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get may be running
        _run(["apt-get", *wait_for_lock, "update"], env=env, timeout=900)
        _run(
            ["apt-get", *wait_for_lock, "install", "-y", "--no-install-recommends", *PACKAGES],
            env=env,
            timeout=1200,
        )
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)
    if missing_programs():
        raise ClusterError(f"still missing after apt-get install: {', '.join(missing_programs())}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def short_hostname() -> str:
    return socket.gethostname().split(".")[0]


def ensure_resolvable(host: str) -> None:
    try:
        socket.gethostbyname(host)
    except OSError:
        with open("/etc/hosts", "a") as hosts:
            hosts.write(f"\n127.0.0.1 {host}\n")


def node_hardware() -> dict[str, int]:
    """CPUs, topology and RealMemory as slurmd detects them (`slurmd -C`)."""
    output = _run([which("slurmd"), "-C"], timeout=60).stdout
    fields = dict(item.split("=", 1) for item in output.split() if "=" in item)
    return {key: int(fields[key]) for key in HARDWARE_KEYS if key in fields}


def munge_works(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    encode = subprocess.run(
        [which("munge"), "-n", "--socket", str(socket_path)], capture_output=True, timeout=10
    )
    if encode.returncode != 0:
        return False
    decode = subprocess.run(
        [which("unmunge"), "--socket", str(socket_path)],
        input=encode.stdout,
        capture_output=True,
        timeout=10,
    )
    return decode.returncode == 0


def _spawn(command: list[str], log: Path, user: str | None = None) -> subprocess.Popen:
    """Start a foreground daemon in its own session, detached from our stdio."""
    as_user = {"user": user, "group": user, "extra_groups": []} if user else {}
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user,
        )


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie child of ours is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:  # not our child: ask /proc
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z"


def _is_program(pid: int, program: str) -> bool:
    """The PID still runs `program` (PIDs are reused)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return Path(argv0).name == program


def _stop(pid: int, timeout: float = 15) -> None:
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _alive(pid)  # reap


class Cluster:
    """A single-node cluster whose files all live under `root`."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.conf = self.root / "slurm.conf"
        self.pid_file = self.root / "pids.json"
        self.host = short_hostname()
        self.bring_up_seconds: float | None = None
        # munged runs as user munge, which cannot enter a private temporary directory: its
        # socket lives in /run/munge, named after this cluster's directory.
        self.munge_name = "i2crc-" + hashlib.sha1(str(self.root).encode()).hexdigest()[:10]
        self.munge_socket = Path("/run/munge") / f"{self.munge_name}.socket"

    # -- clients ------------------------------------------------------------------------------
    def env(self, base: dict | None = None) -> dict[str, str]:
        """The environment in which Slurm client commands, and jobs' nested ones, reach this
        cluster."""
        base = dict(os.environ if base is None else base)
        path = os.pathsep.join([str(self.root / "bin"), base.get("PATH", os.defpath)])
        return {**base, "PATH": path, "SLURM_CONF": str(self.conf)}

    def command(self, *args, check=True, timeout=60) -> subprocess.CompletedProcess:
        """Run a Slurm client command (sinfo, squeue, scontrol, ...) against this cluster."""
        result = subprocess.run(
            [which(str(args[0])), *map(str, args[1:])],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise ClusterError(f"{' '.join(map(str, args))}: {result.stderr.strip()}")
        return result

    def node_state(self) -> str:
        result = self.command("sinfo", "-h", "-N", "-n", self.host, "-o", "%T", check=False)
        lines = result.stdout.split()
        return lines[0] if result.returncode == 0 and lines else ""

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller still knows (finished ones for MinJobAge), as key=value
        dicts."""
        output = self.command(
            "scontrol", "--details", "--oneliner", "show", "job", check=False
        ).stdout
        records = []
        for line in output.splitlines():
            if "JobId=" not in line:
                continue
            record = {}
            for item in line.split():
                key, _, value = item.partition("=")
                record.setdefault(key, value)
            records.append(record)
        return records

    # -- configuration ------------------------------------------------------------------------
    def _system(self, program: str) -> str:
        """The installed program, never our own wrapper of it."""
        ours = self.root / "bin"
        path = [
            entry
            for entry in os.environ.get("PATH", "").split(os.pathsep)
            if entry and Path(entry).resolve() != ours
        ]
        found = shutil.which(program, path=os.pathsep.join(path + SBIN))
        if found is None:
            raise ClusterError(f"{program} is not installed")
        return found

    def write_config(self) -> None:
        for sub in ("state", "spool", "log", "dev", "bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for client in CLIENTS:
            wrapper = self.root / "bin" / client
            wrapper.write_text(
                f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec {self._system(client)} "$@"\n'
            )
            wrapper.chmod(0o755)
        gpu_files = []
        for index in range(GPUS):
            device = self.root / "dev" / f"gpu{index}"
            if not device.exists():
                # Same major/minor as /dev/null: a harmless character device to stand for a GPU.
                os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))
            gpu_files.append(device)
        hardware = node_hardware()
        ctld_port = _free_port()
        slurmd_port = _free_port()
        while slurmd_port == ctld_port:
            slurmd_port = _free_port()
        root = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "# Written by tests/slurm/cluster.py: a throwaway single-node cluster.",
                    "ClusterName=i2crctest",
                    f"SlurmctldHost={self.host}",
                    f"SlurmctldPort={ctld_port}",
                    f"SlurmdPort={slurmd_port}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "CryptoType=crypto/munge",
                    "MpiDefault=none",
                    # No systemd, no cgroup delegation: track processes by parentage, bind nothing.
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "SchedulerType=sched/backfill",
                    "GresTypes=gpu",
                    # No slurmdbd: no accounting; squeue sees a finished job for MinJobAge seconds.
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    f"MinJobAge={MIN_JOB_AGE}",
                    "ReturnToService=2",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=60",
                    "InactiveLimit=0",
                    "KillWait=5",
                    f"StateSaveLocation={root / 'state'}",
                    f"SlurmdSpoolDir={root / 'spool'}",
                    f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    # A job without --mem would otherwise be given the whole node's memory.
                    "DefMemPerCPU=1000",
                    f"NodeName={self.host} NodeAddr=127.0.0.1 "
                    + " ".join(f"{key}={value}" for key, value in hardware.items())
                    + f" Gres=gpu:{GPUS} State=UNKNOWN",
                    *(
                        f"PartitionName={name} Nodes={self.host} "
                        f"Default={'YES' if name == PARTITIONS[0] else 'NO'} "
                        "MaxTime=INFINITE State=UP"
                        for name in PARTITIONS
                    ),
                    "",
                ]
            )
        )
        (self.root / "gres.conf").write_text(
            "\n".join(
                [
                    "# Fake GPUs: character devices with the numbers of /dev/null.",
                    "AutoDetect=off",
                    *(f"NodeName={self.host} Name=gpu File={device}" for device in gpu_files),
                    "",
                ]
            )
        )
        # Not used with proctrack/linuxproc and task/none; written so that nothing looks for one.
        (self.root / "cgroup.conf").write_text(
            "CgroupAutomount=no\nConstrainCores=no\nConstrainRAMSpace=no\n"
        )

    # -- daemons ------------------------------------------------------------------------------
    def _start_munge(self, pids: dict) -> None:
        """Start this cluster's own munged, as user munge, on its own socket."""
        munge_user = pwd.getpwnam("munge")
        munge_dirs = (
            MUNGE_KEY.parent,
            Path("/run/munge"),
            Path("/var/lib/munge"),
            Path("/var/log/munge"),
        )
        for directory in munge_dirs:
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, munge_user.pw_uid, munge_user.pw_gid)
        Path("/run/munge").chmod(0o755)
        if not MUNGE_KEY.exists():
            MUNGE_KEY.write_bytes(os.urandom(1024))
        os.chown(MUNGE_KEY, munge_user.pw_uid, munge_user.pw_gid)
        MUNGE_KEY.chmod(0o400)
        name = self.munge_name
        log = Path("/var/log/munge") / f"{name}.log"
        process = _spawn(
            [
                which("munged"),
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--pid-file=/run/munge/{name}.pid",
                f"--seed-file=/var/lib/munge/{name}.seed",
                f"--log-file={log}",
            ],
            self.root / "log" / "munged.out",
            user="munge",
        )
        pids["munged"] = process.pid
        self._save(pids)
        self._wait(
            lambda: munge_works(self.munge_socket),
            30,
            "munged did not answer",
            [self.root / "log" / "munged.out", log],
        )

    def _wait(self, condition, timeout: float, message: str, logs: list[Path]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        tails = "\n".join(
            f"--- {log}:\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists()
        )
        raise ClusterError(f"{message} within {timeout:.0f} s\n{tails}")

    def _node_idle(self) -> bool:
        state = self.node_state()
        if state.startswith(("inval", "drain", "down")) and "idle" not in state:
            reason = self.command("scontrol", "show", "node", self.host, check=False).stdout
            if state.startswith("inval"):
                raise ClusterError(f"node {self.host} is {state}:\n{reason}")
        return state == "idle"

    def up(self, timeout: float = 120) -> float:
        """Install if needed, configure and start; return the seconds until the node was idle."""
        reason = can_run()
        if reason:
            raise ClusterError(reason)
        start = time.monotonic()
        install()
        self.root.mkdir(parents=True, exist_ok=True)
        ensure_resolvable(self.host)
        self.write_config()
        pids: dict[str, int] = {}
        self._save(pids)
        try:
            self._start_munge(pids)
            logs = self.root / "log"
            pids["slurmctld"] = _spawn(
                [which("slurmctld"), "-D", "-i", "-f", str(self.conf)], logs / "slurmctld.out"
            ).pid
            self._save(pids)
            self._wait(
                lambda: self.command("scontrol", "ping", check=False).returncode == 0,
                timeout,
                "slurmctld did not answer",
                [logs / "slurmctld.out", logs / "slurmctld.log"],
            )
            pids["slurmd"] = _spawn(
                [which("slurmd"), "-D", "-f", str(self.conf)], logs / "slurmd.out"
            ).pid
            self._save(pids)
            self._wait(
                self._node_idle,
                timeout,
                f"node {self.host} did not become idle",
                [logs / "slurmd.out", logs / "slurmd.log", logs / "slurmctld.log"],
            )
        except BaseException:
            self.down()
            raise
        self.bring_up_seconds = time.monotonic() - start
        return self.bring_up_seconds

    def _save(self, pids: dict) -> None:
        self.pid_file.write_text(json.dumps(pids))

    def down(self) -> None:
        """Cancel all jobs, then stop the daemons `up` started (slurmd, slurmctld, munged) by
        PID."""
        if not self.pid_file.exists():
            return
        pids = json.loads(self.pid_file.read_text())
        ctld = pids.get("slurmctld")
        if ctld and _alive(ctld) and _is_program(ctld, "slurmctld"):
            try:
                jobs = self.command(
                    "squeue", "-h", "-o", "%i", check=False, timeout=20
                ).stdout.split()
                if jobs:
                    self.command("scancel", *jobs, check=False, timeout=20)
                    deadline = time.monotonic() + 20
                    while (
                        time.monotonic() < deadline
                        and self.command(
                            "squeue",
                            "-h",
                            "-t",
                            "PD,R,CG,CF,S",
                            "-o",
                            "%i",
                            check=False,
                            timeout=20,
                        ).stdout.split()
                    ):
                        time.sleep(0.5)
            except (subprocess.TimeoutExpired, OSError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            pid = pids.get(name)
            if pid and _alive(pid) and _is_program(pid, name):
                _stop(pid)
        for leftover in (
            Path("/run/munge") / f"{self.munge_name}.pid",
            Path("/run/munge") / f"{self.munge_name}.socket.lock",
            Path("/var/lib/munge") / f"{self.munge_name}.seed",
        ):
            leftover.unlink(missing_ok=True)
        self.pid_file.unlink()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Start or stop a single-node SLURM test cluster.")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    cluster = Cluster(args.directory)
    if args.action == "up":
        seconds = cluster.up()
        print(
            f"cluster up in {seconds:.1f} s; use it with:\n"
            f"export SLURM_CONF={cluster.conf} PATH={cluster.root / 'bin'}:$PATH"
        )
    else:
        cluster.down()
        print("cluster down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
