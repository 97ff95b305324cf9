"""The benchmark's training budgets against its convergence criteria (docs/method.md §9).

    python bench/convergence.py [--seed 0] [--factors 0.5 1 2] [--configfile overlay.yaml]
                                [--stages pretraining classifier full] [--out results/convergence]

Each budget is judged on a method-agnostic task, never on a row of the method:
- pretraining: its own image-level classification, val mAP;
- classifier: the baseline's (all λ = 0) image-level classification, val mAP;
- segmenter: the fully supervised row `full` (ground-truth masks), val mIoU.
Every stage is trained at each factor × its configured budget (epochs or iterations; the
classifiers' rate steps scaled alike) from the same data, saliency and, downstream, the
pretraining at factor 1, through the pipeline's own stage functions. The criterion: the
configured budget (factor 1) is within a point of twice it (factor 2), and the classifiers
reach 0.95 mAP.

The dataset and saliency maps come from Snakemake (the pipeline's rules, into --out). Prints
one JSON object (metric and wall seconds per stage and factor, the criterion's verdicts,
`torch.backends.cpu.get_cpu_capability()`) and draws docs/figures/convergence.png: the metric
against the budget, and the loss curves.
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from i2crc_core.data.manifest import Manifest  # noqa: E402
from i2crc_core.infra.config import deep_update, validate_config  # noqa: E402
from i2crc_core.nets.training import read_curve  # noqa: E402
from i2crc_core.report.plotting import save_png  # noqa: E402
from i2crc_core.stages import (  # noqa: E402
    evaluate,
    evaluate_classifier,
    predict,
    pretrain,
    train_classifier,
    train_segmentation,
)

BASELINE = {"lambda_ob": 0.0, "lambda_bg": 0.0, "lambda_csd": 0.0}
FIGURE = REPO / "docs" / "figures" / "convergence.png"


def load_config(configfile) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if configfile:
        config = deep_update(config, yaml.safe_load(Path(configfile).read_text()))
    return validate_config(config)


def prepare_data(out: Path, seed: int, configfile) -> tuple[Path, Path]:
    """The seed's manifest and saliency maps, made by the pipeline's rules."""
    run = out / f"seed{seed}"
    targets = [run / "dataset" / "manifest.json", run / "saliency" / "maps"]
    command = [
        str(Path(sys.executable).parent / "snakemake"),
        "--cores",
        "all",
        "--quiet",
        "all",
        "--config",
        f"output_dir={out}",
        f"seeds=[{seed}]",
    ]
    if configfile:
        command[1:1] = ["--configfile", str(Path(configfile).resolve())]
    subprocess.run([*command, "--", *map(str, targets)], cwd=REPO, check=True)
    return targets[0], targets[1]


def scaled(settings: dict, factor: float, key: str) -> dict:
    budget = max(1, round(settings[key] * factor))
    result = {**settings, key: budget}
    if "lr_decay_epochs" in settings:
        result["lr_decay_epochs"] = [max(1, round(e * factor)) for e in settings["lr_decay_epochs"]]
    return result


def train_and_score(
    stage: str,
    factor: float,
    config: dict,
    manifest: Path,
    saliency: Path,
    backbone: Path | None,
    folder: Path,
    seed: int,
    threads: int,
) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    common = {
        "manifest_path": manifest,
        "model_path": folder / "model.pt",
        "curve_path": folder / "losses.tsv",
        "checkpoint_dir": folder / "checkpoints",
        "seed": seed,
        "device": "cpu",
        "precision": "fp32",
        "threads": threads,
    }
    start = time.perf_counter()
    if stage == "pretraining":
        settings = scaled(config["pretraining"], factor, "epochs")
        pretrain.run(training=settings, backbone_path=folder / "backbone.pth", **common)
    elif stage == "classifier":
        settings = scaled(config["classifier"], factor, "epochs")
        train_classifier.run(
            training=settings,
            saliency_dir=saliency,
            weights=backbone,
            loss_weights=BASELINE,
            **common,
        )
    else:
        settings = scaled(config["segmentation"], factor, "iterations")
        train_segmentation.run(
            training=settings,
            label_dir=Manifest.load(manifest).layout().mask_dir,
            weights=backbone,
            checkpoint_every=settings["checkpoint_every"],
            **common,
        )
    seconds = time.perf_counter() - start
    metrics = folder / "metrics.json"
    if stage == "full":
        with tempfile.TemporaryDirectory() as predictions:
            predict.run(
                manifest_path=manifest,
                model_path=folder / "model.pt",
                split="val",
                out_dir=predictions,
                scales=[1.0],
                fusion="image",
                crf=None,
                device="cpu",
                precision="fp32",
                threads=threads,
            )
            evaluate.labels(
                manifest_path=manifest, label_dir=predictions, split="val", out_path=metrics
            )
        value = json.loads(metrics.read_text())["miou_ignore_excluded"]
    else:
        evaluate_classifier.run(
            manifest_path=manifest,
            model_path=folder / "model.pt",
            split="val",
            out_path=metrics,
            device="cpu",
            precision="fp32",
            threads=threads,
        )
        value = json.loads(metrics.read_text())["map"]
    return {
        "factor": factor,
        "budget": settings["epochs" if stage != "full" else "iterations"],
        "metric": round(value, 4),
        "train_seconds": round(seconds, 1),
        "curve": str(folder / "losses.tsv"),
    }


def verdict(stage: str, rows: list[dict]) -> dict:
    by_factor = {row["factor"]: row["metric"] for row in rows}
    result = {}
    if 1 in by_factor and 2 in by_factor:
        result["doubling_adds_points"] = round(100 * (by_factor[2] - by_factor[1]), 2)
        result["plateau"] = result["doubling_adds_points"] < 1.0
    if stage != "full" and 1 in by_factor:
        result["map_at_least_0.95"] = by_factor[1] >= 0.95
    return result


def figure(results: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    titles = {
        "pretraining": ("pretraining", "val mAP", "epochs"),
        "classifier": ("baseline classifier", "val mAP", "epochs"),
        "full": ("segmenter on ground truth (full)", "val mIoU", "iterations"),
    }
    stages = [stage for stage in titles if stage in results]
    fig, axes = plt.subplots(2, len(stages), figsize=(4.2 * len(stages), 7), squeeze=False)
    for column, stage in enumerate(stages):
        title, metric, unit = titles[stage]
        rows = results[stage]["runs"]
        top, bottom = axes[0, column], axes[1, column]
        top.plot([r["budget"] for r in rows], [r["metric"] for r in rows], "o-")
        top.set_xscale("log", base=2)
        top.set(title=title, xlabel=f"budget ({unit})", ylabel=metric)
        top.grid(alpha=0.3)
        for row in rows:
            curve = read_curve(row["curve"])
            step = "epoch" if "epoch" in curve else "iteration"
            loss = "cls" if "cls" in curve else "loss"
            bottom.plot(curve[step], curve[loss], label=f"{row['budget']} {unit}")
        bottom.set(xlabel=unit, ylabel="training loss", yscale="log")
        bottom.legend()
    fig.tight_layout()
    save_png(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument(
        "--stages",
        nargs="+",
        default=["pretraining", "classifier", "full"],
        choices=["pretraining", "classifier", "full"],
    )
    parser.add_argument("--configfile")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "convergence")
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()
    config = load_config(args.configfile)
    out = args.out.resolve()
    manifest, saliency = prepare_data(out, args.seed, args.configfile)
    work = out / f"seed{args.seed}" / "convergence"
    backbone = None
    results = {}
    for stage in ("pretraining", "classifier", "full"):
        if stage not in args.stages:
            continue
        if stage != "pretraining" and backbone is None:
            backbone = work / "pretraining" / "x1" / "backbone.pth"
            if not backbone.exists():
                train_and_score(
                    "pretraining",
                    1.0,
                    config,
                    manifest,
                    saliency,
                    None,
                    backbone.parent,
                    args.seed,
                    args.threads,
                )
        rows = [
            train_and_score(
                stage,
                factor,
                config,
                manifest,
                saliency,
                backbone,
                work / stage / f"x{factor:g}",
                args.seed,
                args.threads,
            )
            for factor in sorted(args.factors)
        ]
        results[stage] = {"runs": rows, **verdict(stage, rows)}
    figure(results, args.figure)
    print(
        json.dumps(
            {
                "seed": args.seed,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "processor": platform.processor() or platform.machine(),
                "threads": args.threads,
                "figure": str(args.figure),
                **results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
