"""``rawdrift forensics``: gradient search in the ISP parameter space; writes tables, figures, the signature."""

from __future__ import annotations

from ._cli_common import add_dataset_arguments, add_run_arguments


def add_arguments(parser):
    from .forensics import CONSTRAINTS, DEFAULT_LAMBDAS, GROUPS

    add_dataset_arguments(parser)
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
    add_run_arguments(parser)


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
