"""Command line: ``amal demo``, ``train``, ``teach``, ``bench kd|rules``, ``rules train|lfs`` and ``report``.
Every user error is one line on stderr and a non-zero exit; tracebacks are kept for real bugs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from amal.errors import AmalError


def _demo(args: argparse.Namespace) -> int:
    from amal.demo import demo_config, format_table, run_demo

    cfg = demo_config(seed=args.seed, noise=args.noise, epochs=args.epochs, out_dir=args.out_dir)
    cfg.progress = not args.no_progress and sys.stderr.isatty()
    print(f"amal demo: digits (sklearn), teacher MLP[256,256] -> student MLP[32], label noise {args.noise:.0%}, "
          f"seed {args.seed}, {args.epochs} epochs per method", flush=True)
    rows, teacher = run_demo(cfg)
    print(f"teacher: val acc {teacher['val_acc']:.4f}, test acc {teacher['test_acc']:.4f}")
    print(format_table(rows))
    print(f"run folder: {os.path.join(cfg.out_dir, cfg.name)}  (test acc is taken at the best-validation epoch)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from amal.distill.recipes import run
    from amal.train.config import load_config

    cfg = load_config(args.config, args.set)
    if args.no_progress or not sys.stderr.isatty():
        cfg.progress = False
    out = run(cfg, resume=args.resume)
    r = out.result
    test = "n/a" if r.test_acc_at_best is None else f"{r.test_acc_at_best:.4f}"
    print(f"{cfg.method}: best val acc {r.best_val_acc:.4f} at epoch {r.best_epoch}, test acc {test}, "
          f"{r.seconds:.1f} s, {r.sweeps} λ sweeps")
    print(f"run folder: {out.run_dir}")
    return 0


def _teach(args: argparse.Namespace) -> int:
    from amal.distill.teachers import teach
    from amal.train.config import load_config

    cfg = load_config(args.config, args.set)
    cfg.progress = not args.no_progress and sys.stderr.isatty()
    snaps = [int(s) for s in args.snapshots.split(",")] if args.snapshots else []
    out = teach(cfg, args.out, snaps)
    print(f"teacher: best val epoch {out['best_epoch']}, val acc {out['val_acc']:.4f}, test acc {out['test_acc']:.4f}")
    print(f"saved: {out['path']}" + "".join(f"\nsnapshot: {p}" for p in out["snapshots"]))
    return 0


def _bench_kd(args: argparse.Namespace) -> int:
    from amal.bench.kd import main_args

    return main_args(args.suite, args.seeds, args.out_dir, args.device, args.epochs, args.results_dir,
                     dry_run=args.dry_run, scenarios=args.scenario)


def _bench_rules(args: argparse.Namespace) -> int:
    from amal.bench.rules import main_args

    return main_args(args.dataset, args.seeds, args.out_dir, args.data_dir, args.epochs, args.results_dir,
                     args.device, args.method, args.set, args.tag)


def _rules_train(args: argparse.Namespace) -> int:
    from amal.weak.config import load_rules_config
    from amal.weak.recipes import run_rules

    cfg = load_rules_config(args.config, args.set)
    if args.no_progress or not sys.stderr.isatty():
        cfg.progress = False
    out = run_rules(cfg, resume=args.resume)
    m = out.metrics
    print(f"{cfg.method}: val macro-F1 {m['val_macro_f1']:.4f}, test macro-F1 {m['test_macro_f1']:.4f}, "
          f"test acc {m['test_acc']:.4f} ({m['selected_by']}), {m['seconds']:.1f} s")
    print(f"run folder: {out.run_dir}")
    return 0


def _rules_lfs(args: argparse.Namespace) -> int:
    from amal.weak.analysis import rule_lf_table
    from amal.weak.config import load_rules_config
    from amal.weak.recipes import load_rule_data

    sets = [f"data.name={args.dataset}"] if args.dataset else []
    if args.data_dir:
        sets.append(f"data.path={args.data_dir}")
    cfg = load_rules_config(args.config, [*sets, *args.set])
    cfg.progress = False
    data = load_rule_data(cfg)
    print(f"{cfg.data.name}: {len(data.lf_names)} LFs; split sizes {data.sizes()} (seed {cfg.seed}); "
          f"{data.n_uncovered_dropped} uncovered unlabelled rows dropped")
    print("coverage, overlaps, conflicts: on the unlabelled set; accuracy: on the labelled set")
    print(rule_lf_table(data, {"L": "labelled"}).to_markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amal", description="Adaptive Mixing of Auxiliary Losses (arXiv 2202.03250)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="teacher -> student with CE, KD and AMAL on scikit-learn's digits",
                       description="Train a teacher on digits, then the same student with CE only, KD with a fixed "
                                   "λ and AMAL, on identical splits and budgets; print a table.")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--noise", type=float, default=0.0, help="symmetric label noise on the training split")
    d.add_argument("--epochs", type=int, default=40, help="student epochs per method")
    d.add_argument("--out-dir", default="runs", help="parent of the run folder 'demo'")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_demo)

    t = sub.add_parser("train", help="train a student from a YAML config",
                       description="Train teachers (or load them) and a student with the configured method.")
    t.add_argument("--config", help="YAML file; keys not given keep their defaults")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set amal.every=5 (repeatable)")
    t.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_train)

    th = sub.add_parser("teach", help="train and save a teacher (optionally with snapshots)",
                        description="Train teachers[0] of the config on its data set and save it; the file is "
                                    "usable as teachers[i].path. --snapshots saves the model at chosen epochs too.")
    th.add_argument("--config", help="YAML file (data: and teachers[0]: are used)")
    th.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    th.add_argument("--out", required=True, help="output file, e.g. teachers/t.pt")
    th.add_argument("--snapshots", help="comma-separated epochs (1-based) to save as OUT-epochN.pt")
    th.add_argument("--no-progress", action="store_true")
    th.set_defaults(func=_teach)

    b = sub.add_parser("bench", help="benchmark suites (methods × seeds)", description="Benchmark suites.")
    bsub = b.add_subparsers(dest="bench", required=True)
    from amal.bench.kd import SUITES

    bk = bsub.add_parser("kd", help="knowledge-distillation suites",
                         description="Run every method of a suite on identical splits and seeds and write "
                                     "docs/results/kd_<suite>.md (mean ± std, time, peak memory, plots).")
    bk.add_argument("--suite", required=True, choices=sorted(SUITES))
    bk.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the suite's, 3)")
    bk.add_argument("--epochs", type=int, default=None, help="override the student epochs (quick runs)")
    bk.add_argument("--device", default="cpu")
    bk.add_argument("--out-dir", default="runs/bench", help="where run folders go")
    bk.add_argument("--results-dir", default="docs/results", help="where the results page goes")
    bk.add_argument("--scenario", action="append", default=None, metavar="NAME",
                    help="run only this scenario of the suite (repeatable)")
    bk.add_argument("--dry-run", action="store_true",
                    help="cifar100-paper only: generated data, tiny splits, 1-2 epochs (checks that it all runs)")
    bk.set_defaults(func=_bench_kd)

    br = bsub.add_parser("rules", help="rule-denoising (weak supervision) benchmark",
                         description="Run every rule-denoising method on identical splits, LFs, label model and "
                                     "seeds and write docs/results/rules_<dataset>.md (macro-F1 and accuracy, "
                                     "mean ± std, the LF analysis, what Λ learned, plots).")
    from amal.bench.rules import DATASETS as RULE_SETS

    br.add_argument("--dataset", required=True, choices=sorted(RULE_SETS))
    br.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 5; synthetic 3)")
    br.add_argument("--data-dir", default=None,
                    help="folder with the data files (default: $AMAL_DATA_DIR); not needed for synthetic")
    br.add_argument("--epochs", type=int, default=None, help="override the student epochs (quick runs)")
    br.add_argument("--method", action="append", default=None, metavar="NAME",
                    help="run only this method (repeatable; e.g. amal, lm_end_hard)")
    br.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a rules-config override applied to every method, e.g. features.scale=5 (needs --tag)")
    br.add_argument("--tag", default=None, help="name of the variant: writes rules_<dataset>-<tag>.md")
    br.add_argument("--device", default="cpu")
    br.add_argument("--out-dir", default="runs/bench", help="where run folders go")
    br.add_argument("--results-dir", default="docs/results", help="where the results page goes")
    br.set_defaults(func=_bench_rules)

    r = sub.add_parser("rules", help="rule denoising (weak supervision): train a run, inspect LFs",
                       description="Weak supervision with labeling functions and AMAL.")
    rsub = r.add_subparsers(dest="rules", required=True)
    rt = rsub.add_parser("train", help="train one rule-denoising method from a YAML config",
                         description="Load the data, apply the LFs, fit the label model, train teacher 1 when the "
                                     "method needs it, then the configured method (docs/rules.md).")
    rt.add_argument("--config", help="YAML file; keys not given keep their defaults")
    rt.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set method=lm_end_hard (repeatable)")
    rt.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    rt.add_argument("--no-progress", action="store_true")
    rt.set_defaults(func=_rules_train)
    rl = rsub.add_parser("lfs", help="print the LF analysis table of a data set's LF set",
                         description="Apply the LF set to the data set, split it, and print coverage, overlaps "
                                     "and conflicts (unlabelled set) and accuracy (labelled set) per LF.")
    rl.add_argument("--dataset", choices=["sms", "youtube", "synthetic"], default=None)
    rl.add_argument("--data-dir", default=None, help="folder with the data files (default: $AMAL_DATA_DIR)")
    rl.add_argument("--config", default=None, help="a rules YAML config instead of --dataset")
    rl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    rl.set_defaults(func=_rules_lfs)

    from amal.analysis import add_report_parser

    add_report_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AmalError as e:
        print(f"amal: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("amal: interrupted (resume with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
