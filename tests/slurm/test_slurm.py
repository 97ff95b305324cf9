"""The pipeline on a real SLURM cluster: a single node on localhost, started for this session.

`tests/slurm/cluster.py` installs Slurm if needed (apt-get), starts munged, slurmctld and slurmd
with two fake GPUs, and stops them afterwards. The reduced pipeline runs through
`snakemake --profile profiles/slurm --profile tests/slurm/profile` (the template plus a layer
for this cluster) with its four GPU stages asking for one GPU each, and must:

* finish, with every GPU stage submitted with `--gpus=1` to the gpu partition and allocated a
  GPU by the controller, and no other stage asking for one;
* produce the same pseudo labels and metrics, byte for byte, as a local run of the same
  configuration and seed;
* fail in bounded time, not hang, when a training job is cancelled (`scancel`), and finish on
  rerun, training resuming from its checkpoint.

Those tests (marker `slurm`, `pytest -m slurm`) need root and apt-get, or Slurm already
installed; they are skipped otherwise. One more test, which needs no cluster, checks that the
template profiles/slurm is valid for Snakemake and its SLURM plugin.
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cluster import Cluster, can_run

from tests.helpers.workflow_project import RUN0, SNAKEMAKE, make_project, output_bytes, rule_bodies

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

PROFILES = ["--profile", str(REPO / "profiles" / "slurm"), "--profile", str(HERE / "profile")]
GPU_STAGES = ("pretrain", "train_classifier", "extract_cams", "train_segmentation", "predict")
# The rules that run on a GPU: one per GPU stage, and the classifiers' evaluation on val, which
# has predict's resources.
GPU_RULES = (*GPU_STAGES, "evaluate_classifier")
ON_GPU = {"resources": {stage: {"gpu": 1} for stage in GPU_STAGES}}
# Long enough classifier training (~0.1 s an epoch on 2 cores) that the cancel surely lands
# between its first checkpoint and its end.
SLOWER = {"classifier": {"epochs": 150, "lr_decay_epochs": [100]}}
EXPERIMENTS = ("baseline", "i2crc")
CLASSIFIERS = [f"{RUN0}/{experiment}/classifier/model.pt" for experiment in EXPERIMENTS]
CANCEL_TO_EXIT_LIMIT = 240  # seconds; the executor polls at most every 180 s


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    reason = can_run()
    if reason:
        pytest.skip(f"no SLURM test cluster: {reason}")
    cluster = Cluster(tmp_path_factory.mktemp("slurm-cluster"))
    seconds = cluster.up()
    print(f"\nSLURM cluster up in {seconds:.1f} s")
    try:
        yield cluster
    finally:
        cluster.down()


def snakemake_env(cluster, project) -> dict:
    return cluster.env({**os.environ, "PYTHONPATH": str(project.root), "OMP_NUM_THREADS": "1"})


def slurm_command(*args) -> list[str]:
    return [str(SNAKEMAKE), *PROFILES, "--configfile", "test_config.yaml", "--verbose", *args]


def run_on_slurm(
    cluster, project, *args, timeout=1500
) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = subprocess.run(
        slurm_command(*args),
        cwd=project.root,
        env=snakemake_env(cluster, project),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result, time.monotonic() - start


def run_uuid(output: str) -> str:
    return re.search(r"SLURM run ID: (\S+)", output).group(1)


def rule_of(job: dict) -> str:
    """The rule of a job submitted by the executor, from its --comment
    rule_<rule>[_wildcards_...]."""
    return re.sub(r"_wildcards_.*$", "", job["Comment"])[len("rule_") :]


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("on-slurm") / "project", ON_GPU)
    result, seconds = run_on_slurm(cluster, project)
    assert result.returncode == 0, (
        f"SLURM run failed:\n{result.stdout[-5000:]}\n{result.stderr[-20000:]}"
    )
    uuid = run_uuid(result.stdout + result.stderr)
    jobs = [job for job in cluster.jobs() if job.get("JobName") == uuid]
    return project, result, seconds, jobs


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("local") / "project", ON_GPU)
    start = time.monotonic()
    project.snakemake(timeout=1500)
    return project, time.monotonic() - start


def test_template_profile_is_valid(tmp_path):
    """profiles/slurm uses only options that Snakemake and the plugin know, and sends every stage
    that config.yaml gives a GPU to a GPU partition. Needs no cluster."""
    import yaml

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "profile.yaml").read_text())
    assert profile["executor"] == "slurm"
    defaults = yaml.safe_load((REPO / "config.yaml").read_text())["resources"]
    assert {stage for stage, spec in defaults.items() if spec["gpu"] > 0} == set(GPU_STAGES)
    cpu_partition = profile["default-resources"]["slurm_partition"]
    for rule in GPU_RULES:
        assert profile["set-resources"][rule]["slurm_partition"] != cpu_partition
    project = make_project(tmp_path / "project", ON_GPU)
    result = subprocess.run(
        [
            str(SNAKEMAKE),
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--dry-run",
            "--configfile",
            "test_config.yaml",
        ],
        cwd=project.root,
        env={**os.environ, "PYTHONPATH": str(project.root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-5000:]


def test_the_profile_without_a_controller_stops_in_one_line(tmp_path):
    """Where no controller answers (here: an `scontrol` that says what a login node without
    SLURM configuration says), the run stops before its first submission, in one line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(
        "#!/bin/sh\necho 'scontrol: fatal: Could not establish a configuration "
        "source' >&2\nexit 1\n"
    )
    scontrol.chmod(0o755)
    project = make_project(tmp_path / "project", ON_GPU)
    result = subprocess.run(
        [
            str(SNAKEMAKE),
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--configfile",
            "test_config.yaml",
        ],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PYTHONPATH": str(project.root),
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
        },
    )
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip()
    assert output.splitlines()[-1] == (
        "i2crc error: executor slurm: no SLURM controller answers (`scontrol ping`: scontrol: "
        "fatal: Could not establish a configuration source); run Snakemake on a login node of "
        "the cluster, or use --profile profiles/local"
    )
    assert "sacctmgr" not in output and "sshare" not in output and "Traceback" not in output
    assert not (project.root / "results").exists(), "nothing ran"


@pytest.mark.slurm
@pytest.mark.timeout(1800)
def test_pipeline_runs_on_slurm_with_gpu_requests(slurm_run):
    project, result, seconds, jobs = slurm_run
    log = result.stdout + result.stderr
    assert (project.root / "results" / "summary.json").exists()

    submitted = {}
    for call in re.findall(r"^sbatch call: (.*)$", log, flags=re.MULTILINE):
        rule = re.search(r"--comment '?rule_(\w+?)(?:_wildcards_\S*?)?'? ", call).group(1)
        submitted.setdefault(rule, []).append(call)
    assert set(GPU_RULES) <= set(submitted), f"GPU stages not submitted: {sorted(submitted)}"
    for rule, calls in submitted.items():
        for call in calls:
            if rule in GPU_RULES:
                assert "--gpus=1" in call and " -p gpu" in call, call
            else:
                assert "--gpus" not in call and "--gres" not in call and " -p cpu" in call, call

    # What the controller made of them (no accounting: `scontrol show job`, kept for MinJobAge).
    assert len(jobs) == sum(map(len, submitted.values())), "jobs missing from the controller"
    for job in jobs:
        rule = rule_of(job)
        assert job["JobState"] == "COMPLETED", job
        if rule in GPU_RULES:
            assert job["Partition"] == "gpu" and job["TresPerJob"] == "gres:gpu:1", job
            assert job.get("JOB_GRES") == "gpu:1", f"no GPU allocated to {rule}: {job}"
        else:
            assert job["Partition"] == "cpu" and "gpu" not in job.get("TresPerJob", ""), job
    print(f"\nreduced pipeline through SLURM: {seconds:.1f} s, {len(jobs)} jobs")


@pytest.mark.slurm
@pytest.mark.timeout(1800)
def test_slurm_results_equal_a_local_run(slurm_run, local_run):
    slurm_project, _, slurm_seconds, jobs = slurm_run
    local_project, local_seconds = local_run
    on_slurm = output_bytes(slurm_project.root / RUN0)
    local = output_bytes(local_project.root / RUN0)
    assert len(local) > 20
    assert on_slurm.keys() == local.keys()
    differing = [name for name in local if on_slurm[name] != local[name]]
    assert not differing, f"differ between SLURM and local runs: {differing[:10]}"
    print(
        f"\nreduced pipeline: SLURM {slurm_seconds:.1f} s, local {local_seconds:.1f} s, "
        f"{len(jobs)} jobs: {(slurm_seconds - local_seconds) / len(jobs):.1f} s more per job"
    )


def training_job(cluster, uuid: str, out: Path) -> tuple[str, str] | None:
    """(SLURM job id, experiment) of a running classifier training that has saved a checkpoint."""
    for job in cluster.jobs():
        if job.get("JobName") != uuid or job.get("JobState") != "RUNNING":
            continue
        if rule_of(job) != "train_classifier":
            continue
        # the comment ends in the job's wildcard values: <seed>_<experiment>
        experiment = job["Comment"].split("_wildcards_", 1)[1].split("_", 1)[1]
        directory = out / experiment / "classifier"
        if (
            list(directory.glob("checkpoints/*/step_*.pt"))
            and not (directory / "model.pt").exists()
        ):
            return job["JobId"], experiment
    return None


@pytest.mark.slurm
@pytest.mark.timeout(1500)
def test_cancelled_training_fails_the_run_and_a_rerun_resumes(cluster, tmp_path):
    project = make_project(tmp_path / "project", {**ON_GPU, **SLOWER})
    out = project.root / RUN0
    log_path = tmp_path / "cancelled.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            slurm_command(*CLASSIFIERS),
            cwd=project.root,
            env=snakemake_env(cluster, project),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        uuid, target = None, None
        deadline = time.monotonic() + 900
        while target is None and time.monotonic() < deadline and process.poll() is None:
            if uuid is None and "SLURM run ID" in log_path.read_text():
                uuid = run_uuid(log_path.read_text())
            if uuid is not None:
                target = training_job(cluster, uuid, out)
            time.sleep(0.2)
        assert target is not None, f"no training to cancel:\n{log_path.read_text()[-5000:]}"
        job_id, experiment = target
        cluster.command("scancel", job_id)
        cancelled = time.monotonic()
        try:
            returncode = process.wait(timeout=CANCEL_TO_EXIT_LIMIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"snakemake still running {CANCEL_TO_EXIT_LIMIT} s after scancel (hang)")
        exit_seconds = time.monotonic() - cancelled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if uuid:  # leave no job of this run behind
            cluster.command("scancel", "--name", uuid, check=False)
    assert returncode != 0, "the run succeeded although its training job was cancelled"
    assert any(job["JobId"] == job_id and job["JobState"] == "CANCELLED" for job in cluster.jobs())
    print(f"\nsnakemake exited {exit_seconds:.1f} s after scancel")

    result, _ = run_on_slurm(cluster, project, *CLASSIFIERS)
    assert result.returncode == 0, (
        f"rerun failed:\n{result.stdout[-5000:]}\n{result.stderr[-20000:]}"
    )
    classifier_log = (out / "logs" / "train_classifier" / f"{experiment}.log").read_text()
    assert "resumed from" in classifier_log, classifier_log
    assert all((project.root / model).exists() for model in CLASSIFIERS)


def sbatch_requests(output: str) -> list[dict]:
    """Per job of a dry run: rule, wildcards and the resources that become sbatch flags."""
    requests = []
    for block in re.split(r"^(?=rule \w+:$)", output, flags=re.MULTILINE)[1:]:
        rule = re.match(r"rule (\w+):", block).group(1)
        resources = dict(
            re.findall(r"(\w+)=([^,\s]+)", re.search(r"resources: (.*)", block).group(1))
        )
        wildcards = re.search(r"wildcards: (.*)", block)
        requests.append(
            {
                "rule": rule,
                "wildcards": wildcards.group(1) if wildcards else "",
                **{
                    key: resources.get(key)
                    for key in ("slurm_partition", "gpu", "runtime", "mem_mb")
                },
            }
        )
    return requests


# GPU time limits (minutes) of the VOC preset, and with the overlay for slower GPUs; the sum
# over all GPU jobs of a run, in hours.
VOC_GPU_LIMITS = {
    (): (
        {
            "train_classifier": 60,
            "extract_cams": 30,
            "train_segmentation": 70,
            "predict": 180,
            "evaluate_classifier": 180,
        },
        36.9,
    ),
    ("config/voc12_slow_gpu.yaml",): (
        {
            "train_classifier": 210,
            "extract_cams": 45,
            "train_segmentation": 280,
            "predict": 180,
            "evaluate_classifier": 180,
        },
        60.4,
    ),
}


@pytest.mark.parametrize("overlays", list(VOC_GPU_LIMITS))
def test_voc_preset_asks_slurm_for_what_its_jobs_need(tmp_path, overlays):
    """The sbatch requests of the VOC preset (dry run through profiles/slurm): GPU stages on the
    GPU partition with one GPU and hour-scale time limits sized from their FLOPs
    (docs/cluster.md §"Sizing the jobs"), CAMs in 2 shards per experiment, seconds-long rules run
    by Snakemake itself."""
    project = make_project(tmp_path / "project")
    result = subprocess.run(
        [
            str(SNAKEMAKE),
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--dry-run",
            "--configfile",
            "config/voc12.yaml",
            *overlays,
        ],
        cwd=project.root,
        env={**os.environ, "PYTHONPATH": str(project.root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    requests = [r for r in sbatch_requests(result.stdout) if r["rule"] != "all"]
    print(
        "\n"
        + "\n".join(
            f"{r['rule']:20} {r['wildcards']:40} -p {r['slurm_partition']} "
            f"--gpus={r['gpu']} -t {r['runtime']} --mem {r['mem_mb']}"
            for r in requests
        )
    )
    expected_gpu_limits, total_hours = VOC_GPU_LIMITS[overlays]
    for request in requests:
        if request["rule"] in GPU_RULES:
            assert request["slurm_partition"] == "gpu" and request["gpu"] == "1", request
            assert int(request["runtime"]) == expected_gpu_limits[request["rule"]], request
        else:
            assert request["slurm_partition"] == "cpu" and request["gpu"] == "0", request
            assert int(request["runtime"]) <= 60, request
    shards = [r for r in requests if r["rule"] == "extract_cams"]
    assert len(shards) == 4 and {"scatteritem=1-of-2" in r["wildcards"] for r in shards} == {
        True,
        False,
    }
    # A CAM shard's memory is flat in its number of images, so it asks for one process's
    # memory, half of what the growing one was given (docs/benchmarks.md §"Memory of the stages").
    assert {r["mem_mb"] for r in shards} == {"8000"}
    # Time limits of all GPU jobs together: 36.8 h, 27 h of them for the 7 predict jobs and the 2
    # classifier evaluations (which share predict's resources), sized for the dense CRF's CPU
    # time (config/voc12.yaml); 116 h before any sizing.
    assert sum(int(r["runtime"]) for r in requests if r["rule"] in GPU_RULES) / 60 <= total_hours
    bodies = rule_bodies()
    for rule in (
        "gather_cams",
        "evaluate_labels",
        "evaluate_segmentation",
        "evaluate_cams",
        "target",
        'f"{target}_seeds"',
        "figure_cams",
        "figure_training",
        "figure_examples",
    ):
        assert re.search(r"\n +localrule: True\n", bodies[rule]), rule
