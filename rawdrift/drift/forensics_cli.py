"""``rawdrift forensics``: gradient search in the ISP parameter space; writes tables, figures, the signature."""

from __future__ import annotations


def add_arguments(parser):
    from ..data.base import DATASET_NAMES
    from ..presets import PRESET_NAMES
    from .forensics import CONSTRAINTS, DEFAULT_LAMBDAS, GROUPS

    parser.add_argument("--dataset", default="synthetic-microscopy", choices=DATASET_NAMES)
    parser.add_argument("--preset", choices=PRESET_NAMES, help="default: $RAWDRIFT_PRESET or lab")
    parser.add_argument("--task", choices=("classification", "segmentation"), help="default: the dataset's task")
    parser.add_argument("--out", required=True, help="result folder (resumable: rerun to continue)")
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), metavar="GROUP",
                        help=f"parameter groups, from {' '.join(GROUPS)} (default: all of them)")
    parser.add_argument("--lambdas", nargs="+", type=float, default=list(DEFAULT_LAMBDAS), metavar="LAMBDA",
                        help="weights of the view penalty, >= 0 (0: unconstrained ascent)")
    parser.add_argument("--constraint", default="l2_penalty", choices=CONSTRAINTS)
    parser.add_argument("--epsilon", type=float, help="box half-width (relative) or l-inf view budget")
    parser.add_argument("--epochs", type=int, help="epochs of the search (default: preset forensics_epochs)")
    parser.add_argument("--batch-size", type=int, help="batch size of the search (default: the preset's)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate of the ISP parameters")
    parser.add_argument("--model-epochs", type=int, help="task-model training epochs (default: preset)")
    parser.add_argument("--model", help="task-model state dict to reuse (written there if missing)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="signature tolerance on the metric")
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--n", type=int, help="dataset size (synthetic data)")
    parser.add_argument("--root", help="folder of a real dataset")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def main(args) -> int:
    from pathlib import Path

    from .forensics import ForensicsConfig, run_forensics, signature

    cfg = ForensicsConfig(
        dataset=args.dataset, preset=args.preset, task=args.task, out=args.out, groups=tuple(args.groups),
        lambdas=tuple(args.lambdas), constraint=args.constraint, epsilon=args.epsilon, epochs=args.epochs,
        lr=args.lr, batch_size=args.batch_size, model_epochs=args.model_epochs, model_path=args.model,
        intensity=args.intensity, n=args.n, root=args.root, device=args.device, seed=args.seed, progress=not args.quiet,
    )
    result = run_forensics(cfg)
    sig = signature(result, args.tolerance)
    sig.save(Path(args.out) / "signature.json")
    print(result.to_markdown())
    print()
    print(sig.to_markdown())
    print(f"\nwritten to {args.out}: result.json, summary.md, sweep.csv, samples.npz, figure6.png, samples.png, "
          "signature.json, signature.md")
    return 0
