"""``python -m training [train] ...``, ``python -m training evaluate RUN``, ``... export RUN``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.preprocessing import Preprocessing
from common.scoring import DEFAULT_K
from training.config import (
    TrainConfig,
    add_config_arguments,
    apply_overrides,
    config_from_args,
    given_overrides,
)

COMMANDS = ("train", "evaluate", "export", "reference")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training", description="Train, evaluate and export a VAE."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train a VAE (the default command)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_config_arguments(train)
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir from its last.pt (only --epochs may change)",
    )

    evaluate = sub.add_parser("evaluate", help="test ELBO, importance-weighted NLL, active units")
    evaluate.add_argument("run_dir", type=Path, help="a run folder written by train")
    evaluate.add_argument(
        "--checkpoint", default="best.pt", help="checkpoint file in the run folder (default: best.pt)"
    )
    evaluate.add_argument("--k", type=int, default=1000, help="importance samples per image (default: 1000)")
    evaluate.add_argument("--split", choices=("test", "valid"), default="test", help="(default: test)")
    evaluate.add_argument("--batch-size", type=int, default=100, help="images per batch (default: 100)")
    evaluate.add_argument("--limit", type=int, default=None, help="score only the first N images")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the importance samples (default: 0)")
    evaluate.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu or cuda")

    export = sub.add_parser("export", help="write encoder.onnx, decoder.onnx and model.json")
    export.add_argument("run_dir", type=Path, help="a run folder, evaluated first")
    export.add_argument("--checkpoint", default="best.pt", help="(default: best.pt)")
    export.add_argument("--models-dir", type=Path, default=Path("models"), help="(default: models)")
    export.add_argument("--name", required=True, help="model name, e.g. mnist")
    export.add_argument("--version", required=True, help="model version, e.g. 1")
    export.add_argument("--force", action="store_true", help="replace an existing version")

    reference = sub.add_parser(
        "reference",
        help="score a model's test images and summarize their latents from its ONNX files into its manifest",
    )
    reference.add_argument("folder", type=Path, help="a model folder, e.g. models/mnist/1")
    reference.add_argument("--cache-dir", type=Path, default=Path("data"), help="(default: data)")
    reference.add_argument(
        "--k", type=int, default=DEFAULT_K, help=f"importance samples (default: {DEFAULT_K})"
    )
    reference.add_argument("--limit", type=int, default=None, help="score only the first N test images")
    return parser


def run_train(args: argparse.Namespace) -> None:
    from training.train import train

    if args.resume:
        run_dir = Path(getattr(args, "run_dir", TrainConfig.run_dir))
        saved = TrainConfig.load(run_dir / "config.json")
        overrides = given_overrides(args)
        changed = {k for k, v in overrides.items() if apply_overrides(saved, {k: v}) != saved}
        fixed = sorted(changed - {"epochs", "run_dir"})
        if fixed:
            raise SystemExit(f"error: --resume continues the saved config; cannot change {fixed}")
        cfg = apply_overrides(saved, {k: v for k, v in overrides.items() if k == "epochs"})
    else:
        cfg = config_from_args(args)
    run_dir = train(cfg, resume=args.resume)
    print(f"run written to {run_dir}")


def run_evaluate(args: argparse.Namespace) -> None:
    import torch

    from training.checkpoint import Checkpoint
    from training.data import load_dataset
    from training.evaluate import evaluate, prepare_inputs

    checkpoint = Checkpoint.load(args.run_dir / args.checkpoint)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    model, cfg = checkpoint.build_model().to(device), checkpoint.config
    data = load_dataset(
        cfg.dataset, Path(cfg.data_dir) if cfg.data_dir else None, Path(cfg.cache_dir), cfg.preprocessing()
    )
    split = getattr(data, args.split)
    images = split.images[: args.limit] if args.limit else split.images
    x = prepare_inputs(images, binarize=model.cfg.likelihood == "bernoulli")
    result = evaluate(model, x, k=args.k, batch_size=args.batch_size, seed=args.seed)
    report = result.to_dict() | {"dataset": data.name, "split": args.split, "checkpoint": args.checkpoint}
    (args.run_dir / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{data.name}/{args.split} ({result.n_images} images): ELBO {result.test_elbo_nats:.2f} nats, "
        f"NLL {result.test_nll_nats:.2f} nats (K={args.k}), active units {result.active_units}/"
        f"{result.latent_dim}, {result.seconds:.0f}s; written to {args.run_dir / 'eval.json'}"
    )


def run_export(args: argparse.Namespace) -> None:
    from training.checkpoint import Checkpoint
    from training.export import export_model

    eval_path = args.run_dir / "eval.json"
    if not eval_path.is_file():
        raise SystemExit(
            f"error: {eval_path} is missing; run `python -m training evaluate {args.run_dir}` first"
        )
    metrics = json.loads(eval_path.read_text())
    if metrics.get("checkpoint") != args.checkpoint:
        raise SystemExit(
            f"error: eval.json scores {metrics.get('checkpoint')}, not {args.checkpoint}; evaluate it first"
        )
    checkpoint = Checkpoint.load(args.run_dir / args.checkpoint)
    model, cfg = checkpoint.build_model(), checkpoint.config
    summary_path = args.run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    training = {
        "config": cfg.to_dict(),
        "epochs_trained": checkpoint.epoch,
        "best_valid_neg_elbo": checkpoint.best_valid_neg_elbo,
        "wall_seconds": summary.get("wall_seconds", checkpoint.wall_seconds),
        "world_size": checkpoint.world_size,
        "seed": cfg.seed,
        "versions": checkpoint.versions,
    }
    target = export_model(
        model,
        args.models_dir,
        args.name,
        args.version,
        preprocessing=cfg.preprocessing(model.cfg.image_shape),
        metrics=metrics,
        training=training,
        reference=_test_images(
            cfg.dataset, cfg.data_dir, Path(cfg.cache_dir), cfg.preprocessing(), model.cfg.likelihood
        ),
        force=args.force,
    )
    print(f"exported to {target}")


def _test_images(dataset: str, data_dir: str | None, cache_dir: Path, spec: Preprocessing, likelihood: str):  # type: ignore[no-untyped-def]
    """The test split, as the model's protocol scores it (binarized once for a Bernoulli model)."""
    from training.data import load_dataset
    from training.evaluate import prepare_inputs
    from training.export import ReferenceImages

    data = load_dataset(dataset, Path(data_dir) if data_dir else None, cache_dir, spec)
    binarized = likelihood == "bernoulli"
    x = prepare_inputs(data.test.images, binarize=binarized).numpy()
    return ReferenceImages(x, data.name, "test", binarized, data.test.labels)


def run_reference(args: argparse.Namespace) -> None:
    from common.manifest import Manifest
    from training.reference import latent_summary, score_reference, write_reference

    manifest = Manifest.read(args.folder)
    config = manifest.training["config"]  # the run's knobs: which data the model was trained on
    spec = Preprocessing.from_dict(manifest.preprocessing_config)
    images = _test_images(
        config["dataset"], config.get("data_dir"), args.cache_dir, spec, manifest.likelihood
    )
    x = images.x[: args.limit] if args.limit else images.x
    labels = images.labels[: len(x)] if images.labels is not None else None
    reference = score_reference(
        args.folder,
        manifest,
        x,
        dataset=images.dataset,
        split=images.split,
        binarized=images.binarized,
        k=args.k,
    )
    latents = latent_summary(args.folder, manifest, x, labels, dataset=images.dataset, split=images.split)
    write_reference(args.folder, reference, latents)
    active = sum(a > 0.01 for a in latents.activity)
    print(
        f"{args.folder}: {reference.n_images} {images.dataset}/{images.split} images at K={args.k}, "
        f"mean log p(x) {reference.mean_log_px:.2f} nats, {active}/{len(latents.activity)} units active; "
        "written to its manifest"
    )


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv.insert(0, "train")
    args = build_parser().parse_args(argv)
    try:
        commands = {
            "train": run_train,
            "evaluate": run_evaluate,
            "export": run_export,
            "reference": run_reference,
        }
        commands[args.command](args)
    except (ValueError, FileNotFoundError) as e:  # DataError, ExportError, bad config: a clear message
        raise SystemExit(f"error: {e}") from e


if __name__ == "__main__":
    main()
