"""``python -m gxnor_cuda.train``: train a GXNOR network (ternary weights and activations, DST).

    python -m gxnor_cuda.train --dataset mnist --quick          # the README's main job
    python -m gxnor_cuda.train --dataset digits --epochs 5      # no download, seconds
    python -m gxnor_cuda.train --dataset mnist --resume runs/mnist/checkpoint.pt

Report: test accuracy (final epoch; best epoch named as such), activation sparsity and gated-XNOR
event rate per layer, weight memory packed vs float, time per epoch vs the float twin
(nn.Conv2d + nn.Linear + Adam) trained one epoch in the same run. Writes a CSV log, a checkpoint
(atomically) and a PNG of the training curves into --out.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import os
import pathlib
import pickle
import sys
import time
import warnings

import torch
from tabulate import tabulate
from tqdm import tqdm

from . import data as D
from . import models
from .nn import GXNORConv2d, GXNORLinear, windows_merge
from .optim import DST, is_discrete, rank, world_size

QUICK_EPOCHS = 26

# The defaults of each recipe, for options the command line leaves unset. "mnist" holds MNIST's
# values where they differ from the other datasets'. fast: large batches give DST gradients whose
# signs mean something, r = 0.35 keeps activations dense, the batch grows 8x over a full run (4x
# over --quick) and images shift by 1 px; paper: the original code's settings, except its batch of
# 10,000 and 4,000-epoch schedule (a growing batch and a cosine lr over 100 epochs instead).
RECIPES = {
    "fast": {"epochs": (100, 20), "batch_size": (1000, 100), "lr": (0.05, 0.005), "act_r": (0.35, 1.0),
             "act_a": 0.5, "base": "normalized", "bn": "recalibrate", "bn_eps": 1e-5, "val": (0, 0),
             "growth": (8, 4), "augment": (1, 0)},
    "paper": {"epochs": (100, 20), "batch_size": (1000, 100), "lr": (0.05, 0.005), "act_r": (1.0, 1.0),
              "act_a": 0.5, "base": "adam", "bn": "running", "bn_eps": 1e-4, "val": (10000, 5000),
              "growth": (8, 8), "augment": (0, 0)},
}


def apply_recipe(args) -> None:
    """Fills every option left unset (None) from RECIPES[args.recipe]; growth is (full run, --quick)
    on MNIST, none on the other datasets, and so is augment."""
    mnist = args.dataset == "mnist"
    rec = RECIPES[args.recipe]
    for key, v in rec.items():
        if key in ("growth", "augment") or getattr(args, key, 0) is not None:
            continue
        if isinstance(v, tuple):
            v = v[0] if mnist else v[1]
        if key == "val" and args.dataset == "digits":
            v = 0
        setattr(args, key, v)
    if args.quick and mnist:
        args.epochs = min(args.epochs, QUICK_EPOCHS)
    growth, shift = rec["growth"][1 if args.quick else 0], rec["augment"][1 if args.quick else 0]
    if args.batch_final is None:
        args.batch_final = growth * args.batch_size if mnist else args.batch_size
    if args.augment is None:
        args.augment = shift if mnist else 0


def squared_hinge(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    t = torch.nn.functional.one_hot(target, y.shape[1]).float() * 2 - 1
    return torch.clamp(1 - t * y, min=0).pow(2).mean()


def build(args, gx: bool):
    act = {"r": args.act_r, "a": args.act_a, "window": args.window, "act_states": args.act_states,
           "bn_eps": args.bn_eps}
    if args.arch == "paper":
        make = models.mnist_net if args.dataset != "cifar10" else models.cifar_net
        return make(gx, args.n_states, **act)
    return models.mlp({"mnist": 784, "digits": 64, "cifar10": 3072}[args.dataset], gx, args.n_states, **act)


def random_shift(x: torch.Tensor, s: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image (B, C, H, W) by its own (dy, dx) in [-s, s]^2, filling with the background.

    The background is the image minimum (-1 after the [-1, 1] scaling). Draws from gen, whose state
    the checkpoint keeps, so a resumed run stays bit-identical.
    """
    if s == 0:
        return x
    b, _, h, w = x.shape
    xp = torch.nn.functional.pad(x, (s, s, s, s), value=float(x.min()))
    d = torch.randint(0, 2 * s + 1, (2, b), generator=gen)
    rows = (d[0][:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = (d[1][:, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
    return xp[torch.arange(b)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]


def make_optimizer(net, args, gx: bool):
    if not gx:
        return torch.optim.Adam(net.parameters(), lr=1e-3)
    return DST.for_model(net, lr=args.lr, float_lr=args.float_lr, base=args.base, m=args.m, seed=args.seed)


def device_of(net) -> torch.device:
    return next(net.parameters()).device


def to_device(t: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """A CPU batch to the training device: pinned, copied without blocking the host."""
    if t.device == dev or dev.type == "cpu":
        return t.to(dev)
    return t.pin_memory().to(dev, non_blocking=True)


def autocast(dev: torch.device):
    """bf16 autocast for the float parts (the first conv, BatchNorm, pooling) on a GPU; off on the CPU."""
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")


def evaluate(net, x, y, bs=1000):
    net.eval()
    dev = device_of(net)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    with torch.no_grad(), autocast(dev):
        for i in range(0, len(y), bs):
            correct += (net(to_device(x[i:i + bs], dev)).argmax(1) == to_device(y[i:i + bs], dev)).sum()
    net.train()
    return int(correct) / len(y)


@torch.no_grad()
def recalibrate_bn(net, x, n: int = 10000, bs: int = 1000) -> None:
    """Re-estimate BatchNorm running statistics for the current (final) discrete weights.

    DST flips weights every step, so running averages gathered during the epoch describe a mix of
    past networks; on MNIST the stale statistics cost about 2.5 points of test accuracy. A
    cumulative average over n training images with the weights as they are now fixes that.
    Only BN buffers change (training-mode forwards never read them): resume stays bit-identical.
    """
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
    net.train()
    dev = device_of(net)
    with autocast(dev):
        for k, i in enumerate(range(0, min(n, len(x)), bs)):
            for m in bns:  # the cumulative average of momentum=None, without its read of num_batches_tracked
                m.momentum = 1.0 / (k + 1)
            net(to_device(x[i:i + bs], dev))
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom


def layer_stats(net, x):
    """Per GXNOR layer: input sparsity (share of zero activations) and gated-XNOR event rate."""
    rows, hooks = [], []

    def hook(mod, inp, _out):
        h = inp[0]
        q = mod.input_quantizer
        if q is None:
            return
        a = (h.abs() >= q.r).float()
        w = (mod.weight.reshape(mod.weight.shape[0], -1) != 0).float()
        if isinstance(mod, GXNORConv2d):
            cols = torch.nn.functional.unfold(a, mod.kernel_size, mod.dilation, mod.padding, mod.stride)
            act = cols.mean(dim=(0, 2))  # (K,) share of nonzero inputs per weight position
        else:
            act = a.reshape(-1, a.shape[-1]).mean(0)
        events = (w * act).sum() / w.numel()
        rows.append([type(mod).__name__, tuple(mod.weight.shape), f"{1 - a.mean().item():.3f}",
                     f"{w.mean().item():.3f}", f"{events.item():.3f}"])

    for m in net.modules():
        if isinstance(m, (GXNORConv2d, GXNORLinear)):
            hooks.append(m.register_forward_hook(hook))
    net.eval()
    with torch.no_grad():
        net(to_device(x, device_of(net)))
    net.train()
    for h in hooks:
        h.remove()
    return rows


def weight_bytes(net):
    packed = sum(p.nbytes_stored() for p in net.parameters() if is_discrete(p))
    logical = sum(m.weight.numel() for m in net.modules() if isinstance(m, (GXNORConv2d, GXNORLinear)))
    return packed, logical * 4, logical


CHECKPOINT_FORMAT = 1


def save_atomic(obj, path: pathlib.Path) -> None:
    """A checkpoint: the payload's torch.save bytes with their SHA-256 and a format number, written to
    a temporary file and renamed over ``path`` (a kill never leaves a half-written checkpoint)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    wrapped = {"gxnor_checkpoint": CHECKPOINT_FORMAT, "sha256": hashlib.sha256(data).hexdigest(),
               "payload": torch.frombuffer(bytearray(data), dtype=torch.uint8)}
    _write_atomically(path, lambda tmp: torch.save(wrapped, tmp))


def load_checkpoint(path, map_location) -> dict:
    """Loads what save_atomic wrote (weights_only=True, hash checked); ValueError names what is wrong."""
    try:
        wrapped = torch.load(path, weights_only=True, map_location="cpu")
    except (EOFError, pickle.UnpicklingError, RuntimeError) as e:
        raise ValueError(f"not a checkpoint this program wrote ({type(e).__name__}: {str(e)[:200]})") from e
    if not isinstance(wrapped, dict) or wrapped.get("gxnor_checkpoint") != CHECKPOINT_FORMAT:
        raise ValueError(f"expected a gxnor checkpoint of format {CHECKPOINT_FORMAT}")
    data = bytes(wrapped["payload"].numpy())
    if hashlib.sha256(data).hexdigest() != wrapped.get("sha256"):
        raise ValueError("content hash mismatch: the file is corrupt")
    return torch.load(io.BytesIO(data), weights_only=True, map_location=map_location)


def write_csv_atomic(path: pathlib.Path, rows: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)

    _write_atomically(path, write)


def _write_atomically(path: pathlib.Path, write) -> None:
    """write(tmp) to a file beside ``path``, then rename it over ``path``: readers see the old file or
    the new one, never a partial one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def run_epoch(net, opt, x, y, bs, lr_at, epoch, gen, desc, shift: int = 0):
    """One epoch; the host never waits for the device inside it (the loss is summed on the device)."""
    dev = device_of(net)
    perm = torch.randperm(len(y), generator=gen)
    t0 = time.perf_counter()
    total = torch.zeros((), device=dev)
    steps = math.ceil(len(y) / bs)
    for i in tqdm(range(steps), desc=desc, leave=False, file=sys.stderr, mininterval=2):
        if lr_at is not None:  # the DST group and the BatchNorm (float) group follow one cosine
            f = lr_at(epoch + i / steps)
            for g in opt.param_groups:
                g.setdefault("initial_lr", g["lr"])
                g["lr"] = g["initial_lr"] * f
        idx = perm[i * bs:(i + 1) * bs][rank()::world_size()]  # under torchrun each rank its share of the batch
        opt.zero_grad()
        xb, yb = to_device(random_shift(x[idx], shift, gen), dev), to_device(y[idx], dev)
        with autocast(dev):
            loss = squared_hinge(net(xb).float(), yb)
        loss.backward()
        opt.step()
        total += loss.detach()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return float(total) / steps, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gxnor_cuda.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="mnist", choices=["mnist", "cifar10", "digits"])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--arch", default="paper", choices=["paper", "mlp"])
    ap.add_argument("--recipe", default="fast", choices=sorted(RECIPES),
                    help="the defaults of every option left unset: fast (this package's MNIST recipe: r = 0.35 "
                    "with merged windows, i.e. a clipped straight-through estimator, normalized DST base, 1 px "
                    "shift, BatchNorm re-estimated before each evaluation, all 60k images) or paper (the "
                    "original code's: r = 1, a = 0.5, Adam DST base, no augmentation, running-average BatchNorm "
                    "with eps 1e-4, 50k train / 10k validation, epoch selected on validation)")
    ap.add_argument("--epochs", type=int, default=None, help="default: mnist 100, others 20")
    ap.add_argument("--batch-size", type=int, default=None, help="default: mnist 1000, others 100")
    ap.add_argument("--batch-final", type=int, default=None, metavar="B",
                    help="grow the batch geometrically, epoch by epoch, from --batch-size to B in the last epoch "
                         "(fewer, less noisy DST steps late in training; default: MNIST full runs 8x "
                         "--batch-size, otherwise no growth)")
    ap.add_argument("--lr-final", type=float, default=1 / 30, help="lr factor the cosine decays to (default 1/30)")
    ap.add_argument("--lr", type=float, default=None, help="DST lr (start; cosine decay to lr * --lr-final); default: "
                    "mnist 0.05, others 0.005")
    ap.add_argument("--float-lr", type=float, default=3e-3, help="Adam lr of BatchNorm parameters")
    ap.add_argument("--base", default=None, choices=["sgd", "normalized", "rownorm", "adam"],
                    help="DST increment base (default: fast normalized, paper adam)")
    ap.add_argument("--m", type=float, default=3.0)
    ap.add_argument("--n-states", type=int, default=1, help="N of the weights (1: ternary)")
    ap.add_argument("--act-states", type=int, default=1, help="N of the activations (1: ternary, >= 2: 2^N + 1 levels)")
    ap.add_argument("--bn", default=None, choices=["recalibrate", "running"],
                    help="BatchNorm statistics for evaluation: re-estimated over 10k training images with the "
                    "current weights, or the running averages of training (default: fast recalibrate, paper running)")
    ap.add_argument("--bn-eps", type=float, default=None, help="BatchNorm epsilon (default: fast 1e-5, paper 1e-4)")
    ap.add_argument("--val", type=int, default=None, metavar="N",
                    help="hold out the last N training images as a validation split for epoch selection "
                    "(default: fast 0, paper 10000 on MNIST and 5000 on CIFAR-10)")
    ap.add_argument("--act-r", type=float, default=None, help="activation threshold r of phi_r (default: fast "
                    "recipe on mnist 0.35, otherwise 1 as in the original code)")
    ap.add_argument("--act-a", type=float, default=None, help="half-width a of the surrogate window (default 0.5)")
    ap.add_argument("--window", default="rect", choices=["rect", "tri", "bell"], help="surrogate gradient window")
    ap.add_argument("--augment", type=int, default=None, metavar="S",
                    help="random translation of training images by up to S pixels (default: fast recipe MNIST "
                    "full runs 1, otherwise 0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    ap.add_argument("--quick", action="store_true", help=f"MNIST: {QUICK_EPOCHS} epochs (about 10 minutes on 2 cores)")
    ap.add_argument("--no-float-twin", action="store_true")
    ap.add_argument("--out", default=None, help="output directory (default runs/<dataset>)")
    ap.add_argument("--resume", default=None, help="checkpoint to continue from (bit-identical continuation)")
    ap.add_argument("--record", default=None, metavar="CSV",
                    help="append the run's summary row (settings, accuracies, sparsity, memory, machine) to CSV")
    args = ap.parse_args(argv)
    args.git = _git_describe() if args.record else ""
    if not (math.isfinite(args.lr_final) and 0 < args.lr_final <= 1):
        ap.error(f"--lr-final: expected a factor in (0, 1], got {args.lr_final}")
    if args.augment is not None and args.augment < 0:
        ap.error(f"--augment: expected a shift in pixels >= 0, got {args.augment}")
    if not 0 <= args.n_states <= 7:
        ap.error(f"--n-states: expected N in [0, 7], got {args.n_states}")
    if args.dataset == "digits" and args.arch == "paper":
        print("note: 8x8 digits are too small for the paper's conv net; using --arch mlp", file=sys.stderr)
        args.arch = "mlp"
    apply_recipe(args)
    for name in ("batch_size", "batch_final"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')}: expected a batch size >= 1, got {getattr(args, name)}")
    for name in ("act_r", "act_a"):
        v = getattr(args, name)
        if not (math.isfinite(v) and v > 0):
            ap.error(f"--{name.replace('_', '-')}: expected a positive number, got {v}")
    if not 0 <= args.act_states <= 7:
        ap.error(f"--act-states: expected N in [0, 7], got {args.act_states}")
    if args.val < 0 or not math.isfinite(args.bn_eps) or args.bn_eps <= 0:
        ap.error(f"--val / --bn-eps: expected N >= 0 and eps > 0, got {args.val} and {args.bn_eps}")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        dev = resolve_device(args.device)
    except ValueError as e:
        ap.error(str(e))
    dev, this_rank = init_distributed(dev)
    out = pathlib.Path(args.out or f"runs/{args.dataset}")
    if this_rank == 0:
        try:  # refuse an unusable --out now, not after the first epoch
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            ap.error(f"--out {out}: not a writable directory ({e.strerror or e})")
    try:
        (xs, ys), (xt, yt) = D.load(args.dataset, args.data_dir)
    except D.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.val:
        if args.val >= len(ys):
            ap.error(f"--val: expected fewer than the {len(ys)} training images, got {args.val}")
        (xs, ys), (xv, yv) = (xs[:-args.val], ys[:-args.val]), (xs[-args.val:], ys[-args.val:])
    torch.manual_seed(args.seed)
    with warnings.catch_warnings():
        if args.recipe == "fast":  # the report names the merged windows; no warning per layer
            warnings.filterwarnings("ignore", message="TernaryActivation.*windows")
        net = build(args, gx=True).to(dev)
    opt = make_optimizer(net, args, gx=True)
    model = net  # what trains: under torchrun a DistributedDataParallel wrapper (checkpoints hold net)
    if world_size() > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    lf = args.lr_final
    lr_at = lambda ep: lf + (1 - lf) * 0.5 * (1 + math.cos(math.pi * ep / args.epochs))  # lr factor
    gen = torch.Generator().manual_seed(args.seed)
    history, start = [], 0
    if args.resume:
        try:
            ck = load_checkpoint(args.resume, dev)
            if ck.get("args_key") != _args_key(args):
                raise ValueError(f"checkpoint was made with {ck.get('args_key')}, this run is {_args_key(args)}")
            net.load_state_dict(ck["model"], strict=True)
            opt.load_state_dict(ck["optimizer"])
            gen.set_state(ck["generator"])
            history, start = ck["history"], ck["epoch"]
            if ck.get("threads") not in (None, torch.get_num_threads()):
                print(f"note: the checkpoint ran on {ck['threads']} threads, this run on {torch.get_num_threads()}: "
                      "float sums in the backward may round differently, so the continuation is not bit-identical "
                      "to an uninterrupted run", file=sys.stderr)
        except (OSError, KeyError, TypeError, ValueError, RuntimeError) as e:
            print(f"error: --resume {args.resume}: incompatible or unreadable checkpoint: {e}", file=sys.stderr)
            return 2
    log = out / "log.csv"
    for ep in range(start, args.epochs):
        loss, secs = run_epoch(model, opt, xs, ys, batch_at(args, ep), lr_at, ep, gen, f"gxnor epoch {ep + 1}",
                               args.augment)
        if args.bn == "recalibrate":
            recalibrate_bn(net, xs)  # the same images on every rank: identical statistics
        acc = evaluate(net, xt, yt)
        val = evaluate(net, xv, yv) if args.val else None
        opt.warn_nonfinite()
        history.append({"epoch": ep + 1, "loss": loss, "test_acc": acc, "val_acc": val, "seconds": secs,
                        "lr": opt.param_groups[0]["lr"]})
        if this_rank != 0:  # rank 0 alone reports and writes
            continue
        vtxt = f"  val acc {val * 100:.2f} %" if val is not None else ""
        print(f"epoch {ep + 1}/{args.epochs}: loss {loss:.4f}{vtxt}  test acc {acc * 100:.2f} %  ({secs:.0f} s)",
              flush=True)
        write_csv_atomic(log, history)
        save_atomic({"model": net.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                     "history": history, "epoch": ep + 1, "args_key": _args_key(args),
                     "threads": torch.get_num_threads()}, out / "checkpoint.pt")
    if this_rank == 0:
        report(args, net, history, xs, ys, xt, out, opt)
    if world_size() > 1:
        torch.distributed.destroy_process_group()
    return 0


def init_distributed(dev: torch.device) -> tuple[torch.device, int]:
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on GPUs, gloo on the CPU) and
    take this rank's GPU. The checkpoint holds the unwrapped network and resumes on any world size."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return dev, 0
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev, torch.distributed.get_rank()


def resolve_device(name: str) -> torch.device:
    """--device: auto picks CUDA when a GPU is visible."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device: expected auto, cpu, cuda or cuda:N, got {name!r}") from e
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device: expected auto, cpu, cuda or cuda:N, got {name!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device: {name} requested, but no CUDA device is visible")
    return dev


def batch_at(args, ep: int) -> int:
    """Batch size of epoch ep (0-based): --batch-size grown geometrically to --batch-final at the last epoch."""
    b0, b1 = args.batch_size, args.batch_final
    if b1 == b0 or args.epochs <= 1:
        return b0
    return int(round(b0 * (b1 / b0) ** (ep / (args.epochs - 1))))


def _args_key(args) -> dict:
    keys = ("dataset", "arch", "n_states", "batch_size", "base", "seed", "epochs", "lr", "lr_final", "act_r", "act_a",
            "window", "augment")
    key = {k: getattr(args, k) for k in keys}
    if args.batch_final != args.batch_size:  # absent otherwise: earlier checkpoints still resume
        key["batch_final"] = args.batch_final
    for k, default in (("m", 3.0), ("float_lr", 3e-3), ("act_states", 1), ("bn", "recalibrate"), ("bn_eps", 1e-5),
                       ("val", 0)):  # likewise: present only when changed
        if getattr(args, k) != default:
            key[k] = getattr(args, k)
    return key


def selections(history) -> dict:
    """Test accuracy at the final epoch, at the epoch best on validation (when there is a validation
    split) and at the epoch best on the test set (the original code's selection, optimistic)."""
    final = history[-1]
    best_test = max(history, key=lambda h: h["test_acc"])
    sel = {"final": (final["epoch"], final["test_acc"]), "best_test": (best_test["epoch"], best_test["test_acc"])}
    if history[-1].get("val_acc") is not None:
        bv = max(history, key=lambda h: h["val_acc"])
        sel["best_val"] = (bv["epoch"], bv["test_acc"])
    return sel


def persistent_bytes_per_weight(net, opt) -> float:
    """Bytes kept between steps per discrete weight: the packed states and the optimizer's state for
    them (the Adam base's two float moments; nothing for the stateless bases)."""
    discrete = [p for p in net.parameters() if is_discrete(p)]
    n = weight_bytes(net)[2]
    kept = sum(p.nbytes_stored() for p in discrete)
    for p in discrete:
        kept += sum(v.numel() * v.element_size() for v in opt.state.get(p, {}).values() if torch.is_tensor(v)
                    and v.numel() > 1)
    return kept / n


def report(args, net, history, xs, ys, xt, out, opt=None) -> None:
    sel = selections(history)
    print("\n=== GXNOR training report ===")
    shift = f", random shift {args.augment} px" if args.augment else ""
    ramp = f" growing to {args.batch_final}" if args.batch_final != args.batch_size else ""
    merged = " (windows merged: a clipped straight-through estimator)" if windows_merge(
        args.act_r, args.act_a, args.act_states) else ""
    print(f"recipe {args.recipe}: dataset {args.dataset} ({len(ys)} training images), arch {args.arch}, "
          f"N = {args.n_states} (activations {args.act_states}), DST base {args.base}, {len(history)} epochs, batch "
          f"{args.batch_size}{ramp}, device {device_of(net)}, threads {torch.get_num_threads()}, activation r = "
          f"{args.act_r:g} (window {args.window}, a = {args.act_a:g}){merged}{shift}, BatchNorm {args.bn} "
          f"(eps {args.bn_eps:g})")
    print(f"test accuracy, final epoch ({sel['final'][0]}): {sel['final'][1] * 100:.2f} %")
    if "best_val" in sel:
        print(f"test accuracy at the epoch best on validation ({sel['best_val'][0]}): {sel['best_val'][1] * 100:.2f} %")
    print(f"test accuracy, best epoch ({sel['best_test'][0]}, selected on the test set as the original code does): "
          f"{sel['best_test'][1] * 100:.2f} %")
    stats = layer_stats(net, xt[:500])
    print(tabulate(stats, headers=["layer", "weight shape", "input sparsity", "weight density",
                                   "gated-XNOR event rate"]))
    packed, flt, n = weight_bytes(net)
    print(f"weight memory: packed {packed / 1024:.1f} KiB ({packed * 8 / n:.2f} bits/weight incl. padding) vs "
          f"float32 {flt / 1024:.1f} KiB ({flt / packed:.1f}x smaller)")
    per_weight = persistent_bytes_per_weight(net, opt) if opt is not None else packed / n
    print(f"persistent training state: {per_weight:.3f} bytes per weight (packed states + DST base state)")
    gx_epoch = sum(h["seconds"] for h in history) / len(history)
    if not args.no_float_twin:
        torch.manual_seed(args.seed)
        twin = build(args, gx=False).to(device_of(net))
        topt = make_optimizer(twin, args, gx=False)
        _, tsec = run_epoch(twin, topt, xs, ys, args.batch_size, None, 0, torch.Generator().manual_seed(1),
                            "float twin")
        print(f"time per epoch: GXNOR {gx_epoch:.1f} s vs float twin (nn.Conv2d/nn.Linear + Adam) {tsec:.1f} s "
              f"({tsec / gx_epoch:.2f}x)")
    else:
        print(f"time per epoch: GXNOR {gx_epoch:.1f} s")
    _plot(history, out / "curves.png")
    print(f"log {out / 'log.csv'}, checkpoint {out / 'checkpoint.pt'}, curves {out / 'curves.png'}")
    if args.record:
        record_row(args, net, history, sel, stats, per_weight, len(ys), pathlib.Path(args.record))


def record_row(args, net, history, sel, stats, per_weight, n_train, path: pathlib.Path) -> None:
    """Appends one row per run to a results CSV (the README's results table is rendered from it)."""
    import platform

    from . import _backend

    info = _backend.native_info() or {}
    row = {"recipe": args.recipe, "dataset": args.dataset, "base": args.base, "r": args.act_r, "a": args.act_a,
           "window": args.window, "act_states": args.act_states, "augment_px": args.augment, "bn": args.bn,
           "bn_eps": args.bn_eps, "epochs": len(history), "batch": f"{args.batch_size}->{args.batch_final}",
           "train_images": n_train, "val_images": args.val, "seed": args.seed,
           "final_test": round(sel["final"][1] * 100, 2),
           "best_val_test": round(sel["best_val"][1] * 100, 2) if "best_val" in sel else "",
           "best_val_epoch": sel["best_val"][0] if "best_val" in sel else "",
           "best_test": round(sel["best_test"][1] * 100, 2), "best_test_epoch": sel["best_test"][0],
           "input_sparsity": "/".join(r[2] for r in stats), "event_rate": "/".join(r[4] for r in stats),
           "bytes_per_weight": round(per_weight, 3),
           "minutes": round(sum(h["seconds"] for h in history) / 60, 1), "threads": torch.get_num_threads(),
           "cpu_isa": info.get("cpu_isa", "none"), "cpu": _cpu_model(), "machine": platform.machine(),
           "git": args.git, "command": "python -m gxnor_cuda.train " + " ".join(sys.argv[1:])}
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def _git_describe() -> str:
    """The checkout's commit (-dirty with uncommitted changes), read when the run starts."""
    import subprocess

    try:
        return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=7"], capture_output=True,
                              text=True, cwd=pathlib.Path(__file__).parent).stdout.strip()
    except OSError:
        return ""


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor()


def _plot(history, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    ep = [h["epoch"] for h in history]
    ax[0].plot(ep, [h["loss"] for h in history], marker="o")
    ax[0].set_title("train loss (squared hinge)")
    ax[1].plot(ep, [h["test_acc"] * 100 for h in history], marker="o")
    ax[1].set_title("test accuracy (%)")
    for a in ax:
        a.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
