"""What a λ sweep costs (DESIGN §2a, §2c), measured in one run with one student and one teacher.

Prints context lines, raw timings and then the figures, one per line as ``name=value``:

* ``sweep_over_forward``  one sweep (engine ``last_layer``, fit=3, inner_steps=5, val_batch=1000) ÷ one
  forward-only pass of student and teacher over the same training set with the same loader (target ≤ 1.2);
* ``sweep_over_epoch``    one sweep ÷ one fixed-λ KD training epoch;
* ``amal_over_kd``        AMAL training (schedule ``epochs``, every=10, warmup=0) ÷ fixed-λ KD training,
  same E epochs, same initial student (target ≤ 1.10);
* ``sweep_peak_mb_c10`` / ``sweep_peak_mb_c1000``  peak extra memory of one sweep with a 10-class head
  and with a 1000-class head on 2048-d features (target for the latter ≤ 100 MB).

Run ``python benchmarks/sweep_cost.py --help``; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from amal import AMAL, CrossEntropy, Distillation
from amal.data import Indexed, TensorData
from amal.data.sources import FASHION_MNIST_DIR
from amal.models.zoo import SmallCNN
from amal.utils import peak_extra_mb, tight_cpu_accounting

SEED = 0
LR = 0.05
MOMENTUM = 0.9
TEMPERATURE = 4.0
EVERY = 10


# ----------------------------------------------------------------------------- setup
@dataclass
class Setup:
    name: str
    train: TensorData
    val: TensorData
    n_classes: int


def load_fmnist(data_dir: str, n_train: int | None, n_val: int | None) -> Setup:
    from amal.data import load_dataset

    sp = load_dataset("fashion-mnist", data_dir=data_dir, seed=SEED, n_train=n_train)
    val = sp.val
    if n_val is not None and n_val < len(val):
        val = TensorData(val.x[:n_val], val.y[:n_val])
    return Setup("fashion-mnist", sp.train, val, sp.n_classes)


def synthetic_images(n_train: int | None, n_val: int | None) -> Setup:
    """Random data with Fashion-MNIST's shapes (timings only; nothing is learnt)."""
    n_train = 54_000 if n_train is None else n_train
    n_val = 6_000 if n_val is None else n_val
    g = torch.Generator().manual_seed(SEED)
    n = n_train + n_val
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return Setup("synthetic(1x28x28,10)", TensorData(x[:n_train], y[:n_train]),
                 TensorData(x[n_train:], y[n_train:]), 10)


def make_loader(data: TensorData, batch_size: int, device: torch.device, seed: int = SEED) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        Indexed(data), batch_size=batch_size, shuffle=True, generator=gen, num_workers=0,
        pin_memory=device.type == "cuda",
    )


def reseed(loader: DataLoader, seed: int = SEED) -> None:
    """Same data order for every timed run that starts here."""
    assert loader.generator is not None
    loader.generator.manual_seed(seed)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def kd_terms(teacher: nn.Module) -> list:
    return [CrossEntropy(), Distillation(teacher, temperature=TEMPERATURE)]


def make_amal(student: nn.Module, teacher: nn.Module, n_train: int, val: TensorData, schedule: str,
              **kw: Any) -> tuple[AMAL, torch.optim.Optimizer]:
    opt = torch.optim.SGD(student.parameters(), lr=LR, momentum=MOMENTUM)
    amal = AMAL(student, kd_terms(teacher), n_train, (val.x, val.y), optimizer=opt, schedule=schedule,
                engine="last_layer", warmup=0, every=EVERY, seed=SEED, **kw)
    return amal, opt


def train_teacher(teacher: nn.Module, loader: DataLoader, epochs: int, device: torch.device) -> float:
    """Plain cross-entropy, ``epochs`` epochs (a realistic teacher for the KD term; timings don't depend on it)."""
    if epochs <= 0:
        return 0.0
    opt = torch.optim.SGD(teacher.parameters(), lr=LR, momentum=MOMENTUM)
    teacher.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, y, _i in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = nn.functional.cross_entropy(teacher(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sync(device)
    teacher.eval()
    return time.perf_counter() - t0


@torch.no_grad()
def accuracy(model: nn.Module, data: TensorData, device: torch.device) -> float:
    was = model.training
    model.eval()
    correct = 0
    for s in range(0, len(data), 1024):
        out = model(data.x[s : s + 1024].to(device))
        correct += int((out.argmax(1).cpu() == data.y[s : s + 1024]).sum())
    model.train(was)
    return correct / len(data)


# ----------------------------------------------------------------------------- timed pieces
def forward_pass(student: nn.Module, teacher: nn.Module, loader: Iterable, device: torch.device) -> float:
    """One forward-only pass of student and teacher over the loader (eval mode, no_grad)."""
    s_was, t_was = student.training, teacher.training
    student.eval(), teacher.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for x, _y, _i in loader:
            x = x.to(device, non_blocking=True)
            student(x)
            teacher(x)
    sync(device)
    dt = time.perf_counter() - t0
    student.train(s_was), teacher.train(t_was)
    return dt


def sweep_once(amal: AMAL, loader: Iterable, device: torch.device) -> float:
    t0 = time.perf_counter()
    amal.sweep(loader)
    sync(device)
    return time.perf_counter() - t0


class TrainingRun:
    """The training loop as a user writes it: ``start_epoch`` (sweeps when due), then one SGD step per batch.

    A run advances one step at a time so that two runs can be interleaved batch by batch: on a shared
    machine, load that comes and goes then slows both alike instead of whichever happened to run then.
    """

    def __init__(self, amal: AMAL, opt: torch.optim.Optimizer, loader: DataLoader, device: torch.device) -> None:
        self.amal, self.opt, self.loader, self.device = amal, opt, loader, device
        self.epoch_s: list[float] = []  # training steps (with their data loading) per epoch
        self.sweep_s: list[float] = []  # start_epoch calls that swept
        self.start_s: list[float] = []  # every start_epoch call
        self._it: Any = None
        reseed(loader)

    @property
    def total_s(self) -> float:
        return sum(self.epoch_s) + sum(self.start_s)

    def start(self, e: int) -> None:
        sync(self.device)
        t0 = time.perf_counter()
        rec = self.amal.start_epoch(e, self.loader)
        sync(self.device)
        dt = time.perf_counter() - t0
        self.start_s.append(dt)
        if rec is not None:
            self.sweep_s.append(dt)
        self.amal.model.train()
        self._it = iter(self.loader)
        self.epoch_s.append(0.0)

    def step(self) -> bool:
        """One training step; False (and nothing timed) when the epoch's batches are used up."""
        t0 = time.perf_counter()
        try:
            raw = next(self._it)
        except StopIteration:
            return False
        loss, _ = self.amal.loss(raw)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        sync(self.device)
        self.epoch_s[-1] += time.perf_counter() - t0
        return True


def train_interleaved(runs: list[TrainingRun], epochs: int) -> None:
    """Every run trains ``epochs`` epochs; their steps alternate, the order flipping every batch."""
    for e in range(epochs):
        for run in runs if e % 2 == 0 else runs[::-1]:
            run.start(e)
        live, k = list(runs), 0
        while live:
            order = live if k % 2 == 0 else live[::-1]
            live = [r for r in order if r.step()]
            live.sort(key=runs.index)
            k += 1


# ----------------------------------------------------------------------------- breakdown
def sweep_breakdown(amal: AMAL, loader: Iterable, device: torch.device) -> dict[str, float]:
    """One sweep with timers around its pieces (instance-level wrappers; the library is not modified).

    ``teacher_forward`` = terms' prepare (teacher logits), ``student_forward`` = the chunk pass minus
    ``logit_grads``, ``val_cache`` = validation features/logits once per sweep, ``objective`` = the inner
    steps' hypergradient calls, ``lambda_update`` = the rest of the inner loop (update rule, clamp, write-back),
    ``loader_and_rest`` = whatever is left (data loading, batch moves, bookkeeping).
    """
    import amal.core.mixer as mixer_mod

    acc: dict[str, float] = defaultdict(float)
    saved: dict[str, Any] = {}

    def timed(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            sync(device)
            t0 = time.perf_counter()
            out = fn(*a, **k)
            sync(device)
            acc[key] += time.perf_counter() - t0
            return out

        return wrapper

    for attr, key in [("prepare", "teacher_forward"), ("_chunk_part", "chunk_part"), ("_val_cache", "val_cache"),
                      ("_val_sample", "val_sample"), ("_inner_loop", "inner_loop")]:
        saved[attr] = getattr(amal, attr)
        setattr(amal, attr, timed(key, saved[attr]))
    engine = amal.engine
    saved_make = engine.make_objective

    def make_objective(*a: Any, **k: Any) -> Callable[[Tensor], Any]:
        obj = timed("make_objective", saved_make)(*a, **k)
        return timed("objective", obj)

    engine.make_objective = make_objective  # type: ignore[method-assign]
    saved_lg = mixer_mod.logit_grads
    mixer_mod.logit_grads = timed("logit_grads", saved_lg)
    try:
        total = sweep_once(amal, loader, device)
    finally:
        mixer_mod.logit_grads = saved_lg
        del engine.make_objective
        for attr in saved:
            delattr(amal, attr)  # back to the class's methods
    out = {
        "total": total,
        "teacher_forward": acc["teacher_forward"],
        "student_forward": acc["chunk_part"] - acc["logit_grads"],
        "logit_grads": acc["logit_grads"],
        "val_cache": acc["val_cache"],
        "val_sample": acc["val_sample"],
        "make_objective": acc["make_objective"],
        "objective": acc["objective"],
        "lambda_update": acc["inner_loop"] - acc["make_objective"] - acc["objective"],
    }
    out["loader_and_rest"] = total - sum(v for k, v in out.items() if k != "total")
    return out


# ----------------------------------------------------------------------------- 1000-class memory
class FixedProjection(nn.Module):
    """A frozen random projection followed by ReLU: a stand-in body with ``dim``-d features."""

    def __init__(self, d_in: int, dim: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("weight", torch.randn(dim, d_in, generator=g) / d_in**0.5)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x @ self.weight.T)


class ProjNet(nn.Module):
    def __init__(self, d_in: int, dim: int, n_classes: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.body = FixedProjection(d_in, dim, seed)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def wide_head_memory(n_train: int, n_val: int, batch_size: int, device: torch.device,
                     d_in: int = 256, dim: int = 2048, n_classes: int = 1000) -> tuple[float, float, float | None]:
    """Peak extra MB, seconds and (CPU) tensor-peak MB of one sweep with a ``n_classes``-way head on
    ``dim``-d features."""
    g = torch.Generator().manual_seed(SEED + 1)
    n = n_train + n_val
    x = torch.randn(n, d_in, generator=g)
    y = torch.randint(0, n_classes, (n,), generator=g)
    train_d, val_d = TensorData(x[:n_train], y[:n_train]), TensorData(x[n_train:], y[n_train:])
    student = ProjNet(d_in, dim, n_classes, SEED).to(device)
    teacher = ProjNet(d_in, dim, n_classes, SEED + 7).to(device)
    loader = make_loader(train_d, batch_size, device)
    amal, _ = make_amal(student, teacher, n_train, val_d, "epochs")
    sweep_once(amal, loader, device)  # warm-up: one-time allocations are not the sweep's
    seconds, mb = peak_extra_mb(lambda: sweep_once(amal, loader, device), device)
    tensors = peak_extra_mb(lambda: amal.sweep(loader), device, "tensors")[1] if device.type == "cpu" else None
    return mb, seconds, tensors


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Cost of AMAL's λ sweep (last_layer engine) against forward passes, KD epochs and KD "
        "training; peak sweep memory for a 10-class and a 1000-class head. Prints name=value lines.",
    )
    p.add_argument("--quick", action="store_true",
                   help="1,500 training and 500 validation images, a smaller 1000-class check: under a minute "
                   "on 2 idle CPU cores; explicit options win")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda (pinned-memory loader on cuda)")
    p.add_argument("--data-dir", default=FASHION_MNIST_DIR,
                   help="Fashion-MNIST IDX folder; synthetic data of the same shapes when it does not exist "
                   f"(default: {FASHION_MNIST_DIR})")
    p.add_argument("--synthetic", action="store_true", help="use synthetic data even if Fashion-MNIST exists")
    p.add_argument("--epochs", type=int, default=10,
                   help=f"E for amal_over_kd, a multiple of {EVERY} (default: 10)")
    p.add_argument("--batch-size", type=int, default=128, help="default: 128")
    p.add_argument("--n-train", type=int, default=None,
                   help="training instances (default: all 54,000 of the split; --quick: 1,500)")
    p.add_argument("--n-val", type=int, default=None,
                   help="validation instances (default: all 6,000 of the split; --quick: 500)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed repeats of sweep and forward pass after one warm-up each; the median is used "
                   "(default: 3)")
    p.add_argument("--teacher-epochs", type=int, default=1,
                   help="epochs of plain cross-entropy training for the teacher before timing; "
                   "0: untrained (default: 1)")
    p.add_argument("--c1000-n-train", type=int, default=None,
                   help="training instances of the 1000-class memory check (default: 3,072; --quick: 768)")
    p.add_argument("--c1000-n-val", type=int, default=2000,
                   help="validation instances of the 1000-class memory check (its cached val features and "
                   "logits take n_val·(2048+1000)·4 bytes; default: 2,000)")
    p.add_argument("--skip-training", action="store_true",
                   help="skip the E-epoch KD and AMAL trainings (no sweep_over_epoch / amal_over_kd)")
    p.add_argument("--breakdown", action="store_true",
                   help="also time the pieces of one extra sweep (sweep_part_*_s lines)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's default)")
    p.add_argument("--json", metavar="PATH", default=None, help="also write every printed value as JSON")
    args = p.parse_args(argv)
    quick = args.quick
    if args.n_train is None and quick:
        args.n_train = 1500
    if args.n_val is None and quick:
        args.n_val = 500
    if args.c1000_n_train is None:
        args.c1000_n_train = 768 if quick else 3072
    if args.epochs < EVERY or args.epochs % EVERY:
        p.error(f"--epochs must be a positive multiple of {EVERY} (one sweep every {EVERY} epochs)")
    if args.repeats < 1 or args.batch_size < 1:
        p.error("--repeats and --batch-size must be >= 1")
    return args


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.1f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wall0 = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out: dict[str, Any] = {}

    def emit(name: str, value: Any) -> None:
        out[name] = value
        print(f"{name}={fmt(value)}", flush=True)

    # -- data and models
    if not args.synthetic and os.path.isdir(args.data_dir):
        setup = load_fmnist(args.data_dir, args.n_train, args.n_val)
    else:
        setup = synthetic_images(args.n_train, args.n_val)
    torch.manual_seed(SEED)
    student = SmallCNN(1, setup.n_classes, width=(16, 32)).to(device)
    teacher = SmallCNN(1, setup.n_classes, width=(32, 64)).to(device)
    student_init = copy.deepcopy(student.state_dict())
    loader = make_loader(setup.train, args.batch_size, device)
    teacher_s = train_teacher(teacher, loader, args.teacher_epochs, device)
    teacher.eval()

    emit("device", str(device) if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})")
    emit("cpu", f"{_cpu_name()} ({os.cpu_count()} logical cores)")
    emit("torch", torch.__version__)
    emit("threads", torch.get_num_threads())
    emit("data_set", setup.name)
    emit("n_train", len(setup.train))
    emit("n_val", len(setup.val))
    emit("batch_size", args.batch_size)
    emit("student", "SmallCNN(1,10,width=(16,32))")
    emit("teacher", f"SmallCNN(1,10,width=(32,64)) trained {args.teacher_epochs} epoch(s) CE"
         if args.teacher_epochs > 0 else "SmallCNN(1,10,width=(32,64)) untrained")
    if args.teacher_epochs > 0 and setup.name == "fashion-mnist":
        emit("teacher_val_acc", accuracy(teacher, setup.val, device))
    emit("teacher_train_s", teacher_s)
    emit("sweep_settings", "engine=last_layer fit=3 inner_steps=5 val_batch=1000 update=sgd")
    emit("epochs", args.epochs)
    emit("load_average_start", _loadavg())
    emit("repeats", args.repeats)

    # -- sweep vs forward pass (interleaved, after one warm-up each)
    meta, _ = make_amal(student, teacher, len(setup.train), setup.val, "epochs")
    reseed(loader)
    forward_pass(student, teacher, loader, device)
    sweep_once(meta, loader, device)
    fwd_s, sweep_s = [], []
    for _ in range(args.repeats):
        fwd_s.append(forward_pass(student, teacher, loader, device))
        sweep_s.append(sweep_once(meta, loader, device))
    fwd, sw = statistics.median(fwd_s), statistics.median(sweep_s)
    emit("forward_s", fwd)
    emit("forward_s_all", " ".join(f"{v:.3f}" for v in fwd_s))
    emit("sweep_s", sw)
    emit("sweep_s_all", " ".join(f"{v:.3f}" for v in sweep_s))
    emit("sweep_chunks", meta.history[-1].chunks)
    if args.breakdown:
        for k, v in sweep_breakdown(meta, loader, device).items():
            emit(f"sweep_part_{k}_s", v)

    # -- E-epoch trainings from the same initial student, interleaved step by step: fixed-λ KD and AMAL
    kd = am = None
    if not args.skip_training:
        runs: dict[str, TrainingRun] = {}
        for name, schedule in (("kd", "fixed"), ("amal", "epochs")):
            model = SmallCNN(1, setup.n_classes, width=(16, 32)).to(device)  # fresh: no hooks from the sweep's AMAL
            model.load_state_dict(student_init)
            a, opt = make_amal(model, teacher, len(setup.train), setup.val, schedule)
            runs[name] = TrainingRun(a, opt, make_loader(setup.train, args.batch_size, device), device)
        kd, am = runs["kd"], runs["amal"]
        train_interleaved([kd, am], args.epochs)
        if setup.name == "fashion-mnist":
            emit("kd_val_acc", accuracy(kd.amal.model, setup.val, device))
            emit("amal_val_acc", accuracy(am.amal.model, setup.val, device))
        emit("kd_epoch_s", statistics.median(kd.epoch_s))
        emit("kd_epoch_s_all", " ".join(f"{v:.3f}" for v in kd.epoch_s))
        emit("amal_epoch_s", statistics.median(am.epoch_s))
        emit("amal_epoch_s_all", " ".join(f"{v:.3f}" for v in am.epoch_s))
        emit("amal_sweeps_in_training_s", " ".join(f"{v:.3f}" for v in am.sweep_s))
        emit("kd_train_s", kd.total_s)
        emit("amal_train_s", am.total_s)

    # -- memory, last: on CPU the allocator setting below slows allocations and cannot be undone
    if device.type == "cpu":
        emit("cpu_memory_accounting", "VmHWM-VmRSS, mmap threshold 1 MiB" if tight_cpu_accounting()
             else "VmHWM-VmRSS or ru_maxrss, default allocator")
    _, mb10 = peak_extra_mb(lambda: sweep_once(meta, loader, device), device)
    _, mb_fwd = peak_extra_mb(lambda: forward_pass(student, teacher, loader, device), device)
    emit("forward_peak_mb_c10", mb_fwd)
    if device.type == "cpu":  # the same, counting tensor bytes only (profiler; slower, so not timed)
        emit("sweep_tensor_peak_mb_c10", peak_extra_mb(lambda: meta.sweep(loader), device, "tensors")[1])
        emit("forward_tensor_peak_mb_c10",
             peak_extra_mb(lambda: forward_pass(student, teacher, loader, device), device, "tensors")[1])
    # 1000-class head on 2048-d features
    mb1000, s1000, t1000 = wide_head_memory(args.c1000_n_train, args.c1000_n_val, args.batch_size, device)
    emit("c1000_setup", f"ProjNet(256->2048 fixed, Linear(2048,1000)) n_train={args.c1000_n_train} "
         f"n_val={args.c1000_n_val} random data")
    emit("c1000_val_cache_mb", args.c1000_n_val * (2048 + 1000) * 4 / 2**20)
    emit("c1000_sweep_s", s1000)
    if t1000 is not None:
        emit("sweep_tensor_peak_mb_c1000", t1000)

    # -- the figures (noise checks first: on an idle machine all three agree)
    emit("sweep_over_forward_min", min(sweep_s) / min(fwd_s))
    emit("sweep_over_forward_paired_median", statistics.median(b / a for a, b in zip(fwd_s, sweep_s)))
    emit("sweep_over_forward", sw / fwd)
    if kd is not None and am is not None:
        emit("sweep_over_epoch", sw / statistics.median(kd.epoch_s))
        emit("amal_over_kd", am.total_s / kd.total_s)
    emit("sweep_peak_mb_c10", mb10)
    emit("sweep_peak_mb_c1000", mb1000)
    emit("load_average_end", _loadavg())
    emit("bench_wall_s", time.perf_counter() - wall0)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
