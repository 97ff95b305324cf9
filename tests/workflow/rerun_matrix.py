"""The rerun matrix: for every leaf key of config.yaml, what Snakemake reruns in a finished
project when only that key changes, read from a dry run.

A row names the rules whose jobs are invalidated by the change itself (their params, code or
input set changed; everything downstream of them follows), the number of jobs the dry run
would execute, and how many of those train a model. The table in
docs/reproducibility.md §"Rerun semantics" is the reference that tests/workflow/test_rerun.py
compares with; where all keys under a prefix agree the table has one `prefix.*` row. To print
the table for the current code, from the repository root (`-m` puts it on the path, for
`tests.helpers`):

    python -m tests.workflow.rerun_matrix [folder to keep the finished project in]
"""

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from i2crc_core.infra.config import deep_update
from tests.helpers.workflow_project import REPO, SNAKEMAKE, Project, make_project

TRAINING_RULES = ("pretrain", "train_classifier", "train_segmentation")
README_MARKERS = ("<!-- rerun-matrix:start -->", "<!-- rerun-matrix:end -->")


def _nested(key: str, value) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


# Keys without a generic alternative value (strings, nulls, structured lists), or whose
# alternative is only valid together with another key: the whole change of the row.
CHANGES = {
    "device": {"device": "cpu"},
    "precision": {"precision": "fp32"},
    "output_dir": {"output_dir": "results_elsewhere"},
    "dataset.kind": {"dataset": {"kind": "voc", "root": "results/dataset/synthetic"}},
    "dataset.root": {"dataset": {"root": "data/VOC2012"}},
    "dataset.image_dir": {"dataset": {"image_dir": "Images"}},
    "dataset.mask_dir": {"dataset": {"mask_dir": "Masks"}},
    "dataset.split_dir": {"dataset": {"split_dir": "Splits"}},
    "dataset.train_split": {"dataset": {"train_split": "trainval"}},
    "dataset.eval_split": {"dataset": {"eval_split": "test"}},
    "dataset.image_labels": {"dataset": {"image_labels": "train_cls.txt"}},
    "dataset.fetch": {"dataset": {"kind": "voc", "root": "data/VOC2012", "fetch": True}},
    **{
        f"dataset.archives.{name}.{key}": _nested(f"dataset.archives.{name}.{key}", value)
        for name in ("voc", "sbd")
        for key, value in [
            ("url", f"http://127.0.0.1:8000/{name}.tar"),
            ("md5", "0" * 32),
            ("sha256", "0" * 64),
        ]
    },
    "dataset.download_dir": {"dataset": {"download_dir": "downloads"}},
    "saliency.source": {"saliency": {"source": "opencv_spectral_residual"}},
    "saliency.folder": {"saliency": {"folder": "maps"}},
    "saliency.url": {"saliency": {"url": "https://example.org/maps.zip"}},
    "saliency.sha256": {"saliency": {"sha256": "0" * 64}},
    "saliency.archive": {"saliency": {"archive": True}},
    "saliency.member_prefix": {"saliency": {"member_prefix": "maps"}},
    "pretraining.optimizer": {"pretraining": {"optimizer": "sgd"}},
    # The pretraining stage makes weights for the small backbone only.
    "classifier.backbone": {"classifier": {"backbone": "vgg16", "weights": None}},
    "classifier.weights": {"classifier": {"weights": "weights/classifier.pth"}},
    "classifier.optimizer": {"classifier": {"optimizer": "adam"}},
    "classifier.color_jitter": {"classifier": {"color_jitter": [0.1, 0.1, 0.1, 0.05]}},
    "cams.merge": {"cams": {"merge": "copy"}},
    "cams.input_size": {"cams": {"input_size": 48}},
    "cams.normalise": {"cams": {"normalise": "image"}},
    "classifier.head_init": {"classifier": {"head_init": "pytorch"}},
    "pretraining.head_init": {"pretraining": {"head_init": "fan_out_normal"}},
    "losses.cad_weighting": {"losses": {"cad_weighting": "squared"}},
    "segmentation.backbone": {"segmentation": {"backbone": "resnet101", "weights": None}},
    "segmentation.weights": {"segmentation": {"weights": "weights/segmenter.pth"}},
    "segmentation.optimizer": {"segmentation": {"optimizer": "adam"}},
    "segmentation.aspp_rates": {"segmentation": {"aspp_rates": [3, 6]}},
    "segmentation.scale_step": {"segmentation": {"scale_step": 0.25}},
    "segmentation.input_normalisation": {"segmentation": {"input_normalisation": "caffe_bgr"}},
    "segmentation.msc_scales": {"segmentation": {"msc_scales": [0.5]}},
    "segmentation.inference_fusion": {"segmentation": {"inference_fusion": "logits"}},
    "evaluation.label_split": {"evaluation": {"label_split": "train"}},
}


@dataclass(frozen=True)
class Outcome:
    invalidated: tuple[str, ...]  # rules, sorted by name
    jobs: int
    training_jobs: int

    def cells(self) -> list[str]:
        rules = ", ".join(self.invalidated) if len(self.invalidated) <= 4 else "every rule"
        return [rules or "—", str(self.jobs), str(self.training_jobs)]


def leaf_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, value in tree.items():
        key = f"{prefix}{name}"
        keys += leaf_keys(value, key + ".") if isinstance(value, dict) and value else [key]
    return keys


def value_at(tree: dict, key: str):
    for part in key.split("."):
        tree = tree[part]
    return tree


def _alternative(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.9 if value else 0.05
    if isinstance(value, list) and value and isinstance(value[-1], str):
        return value[:-1]
    if isinstance(value, list) and value:
        return value[:-1] + [_alternative(value[-1])]
    raise ValueError(f"no generic alternative to {value!r}")


def change_for(key: str, defaults: dict) -> dict:
    """The config change of `key`'s row."""
    if key in CHANGES:
        return CHANGES[key]
    return _nested(key, _alternative(value_at(defaults, key)))


def parse_dry_run(output: str) -> Outcome:
    invalidated, jobs, training = [], 0, 0
    for rule, reason in re.findall(
        r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    reason: (.*)$", output, flags=re.MULTILINE
    ):
        if rule == "all":
            continue
        jobs += 1
        training += rule in TRAINING_RULES
        own = [
            part
            for part in reason.split("; ")
            if not part.startswith("Input files updated by another job")
        ]
        if own and rule not in invalidated:
            invalidated.append(rule)
    return Outcome(tuple(sorted(invalidated)), jobs, training)


def dry_run(project: Project, config: dict, name: str) -> Outcome:
    path = project.root / f"matrix_{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [str(SNAKEMAKE), "--dry-run", "--nolock", "--cores", "2", "--configfile", path.name],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(project.root)},
    )
    path.unlink()
    if result.returncode != 0:
        raise AssertionError(f"dry run for {name} failed:\n{result.stdout}\n{result.stderr}")
    return parse_dry_run(result.stdout)


def compute(project: Project, workers: int = 2) -> dict[str, Outcome]:
    """Key -> outcome for every leaf key of config.yaml, dry-running against `project`."""
    defaults = yaml.safe_load((REPO / "config.yaml").read_text())
    current = deep_update(defaults, project.config)
    keys = leaf_keys(defaults)

    def row(key):
        return key, dry_run(project, deep_update(project.config, change_for(key, current)), key)

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(row, keys))


def grouped(matrix: dict[str, Outcome], tree: dict, prefix: str = "") -> list[tuple[str, Outcome]]:
    """Rows: one `prefix.*` row for a subtree whose keys all share one outcome."""
    rows = []
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            outcomes = {matrix[leaf] for leaf in leaf_keys(value, key + ".")}
            rows += (
                [(key + ".*", outcomes.pop())]
                if len(outcomes) == 1
                else grouped(matrix, value, key + ".")
            )
        else:
            rows.append((key, matrix[key]))
    return rows


def markdown(matrix: dict[str, Outcome]) -> str:
    defaults = yaml.safe_load((REPO / "config.yaml").read_text())
    lines = ["| config key | invalidates | jobs rerun | of which training |", "|---|---|---:|---:|"]
    lines += [
        f"| `{key}` | " + " | ".join(outcome.cells()) + " |"
        for key, outcome in grouped(matrix, defaults)
    ]
    return "\n".join(lines)


def readme_table(markers=README_MARKERS) -> str:
    text = (REPO / "docs/reproducibility.md").read_text()
    start, end = markers
    return text.split(start)[1].split(end)[0].strip()


# The data rows: a finished project on a user's dataset root (DATA_ROOT, VOC layout) with a
# user's folder of saliency maps (MAPS_FOLDER); each row rewrites one file the run reads.
DATA_ROOT, MAPS_FOLDER = "data/voc", "data/maps"
DATA_README_MARKERS = ("<!-- data-rerun:start -->", "<!-- data-rerun:end -->")
DATA_CONFIG = {
    "dataset": {"kind": "voc", "root": DATA_ROOT, "train_split": "train", "eval_split": "val"},
    "saliency": {"source": "folder", "folder": MAPS_FOLDER},
}


def first_id(project: Project, split: str) -> str:
    return (
        (project.root / DATA_ROOT / "ImageSets/Segmentation" / f"{split}.txt")
        .read_text()
        .split()[0]
    )


DATA_EDITS = {
    "a training image": lambda p: f"{DATA_ROOT}/JPEGImages/{first_id(p, 'train')}.jpg",
    "a training mask": lambda p: f"{DATA_ROOT}/SegmentationClass/{first_id(p, 'train')}.png",
    "a validation image": lambda p: f"{DATA_ROOT}/JPEGImages/{first_id(p, 'val')}.jpg",
    "a validation mask": lambda p: f"{DATA_ROOT}/SegmentationClass/{first_id(p, 'val')}.png",
    "a split list": lambda p: f"{DATA_ROOT}/ImageSets/Segmentation/train.txt",
    "a saliency map": lambda p: f"{MAPS_FOLDER}/{first_id(p, 'train')}.png",
}


def make_data_project(root: Path, finished: Project) -> Project:
    """A finished project on DATA_CONFIG, its dataset and maps copied from `finished`'s seed 0."""
    project = make_project(root, DATA_CONFIG)
    shutil.copytree(finished.root / "results/seed0/dataset/synthetic", root / DATA_ROOT)
    shutil.copytree(finished.root / "results/seed0/saliency/maps", root / MAPS_FOLDER)
    project.snakemake()
    return project


def data_rows(project: Project) -> dict[str, Outcome]:
    """File edited -> outcome, each file rewritten with its own bytes and a later time (what
    an edit looks like to the fingerprint), dry-run, then put back as it was."""
    rows = {}
    for name, path_of in DATA_EDITS.items():
        path = project.root / path_of(project)
        status = path.stat()
        later = status.st_mtime_ns + 10**9
        path.write_bytes(path.read_bytes())
        os.utime(path, ns=(later, later))
        rows[name] = dry_run(project, project.config, name.replace(" ", "_"))
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    return rows


def data_markdown(rows: dict[str, Outcome]) -> str:
    lines = [
        "| file edited | invalidates | jobs rerun | of which training |",
        "|---|---|---:|---:|",
    ]
    lines += [f"| {name} | " + " | ".join(outcome.cells()) + " |" for name, outcome in rows.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        # An optional argument names a folder to keep the finished project in, for reuse.
        root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp) / "project"
        if (root / "results" / "summary.json").exists():
            finished = Project(root, yaml.safe_load((root / "test_config.yaml").read_text()))
        else:
            finished = make_project(root)
            finished.snakemake()
        print(markdown(compute(finished)))
        print()
        print(data_markdown(data_rows(make_data_project(Path(tmp) / "data_project", finished))))
