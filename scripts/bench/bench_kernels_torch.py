#!/usr/bin/python3
"""bench_kernels_torch.py: the PyTorch side of scripts/bench/bench_kernels.sh
and scripts/gpu-check; same workloads and output format as bench_kernels.c.

    bench_kernels_torch.py [--device cpu|cuda] [--threads N] [--bf16] [--channels-last]
                           [--batch 64] [--size 64] [--width 16] [--steps 5] conv|gemm|step

The step model is scripts/gen_kernel_goldens.py's Part1 twin (same layers and
losses as kernels/testnet/fp_part1_net.c), trained with AdamW in eager mode;
--bf16 uses autocast(bfloat16) with float32 master weights.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from gen_kernel_goldens import Part1, adamw_groups, part1_loss  # noqa: E402


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, steps, dev):
    fn()
    sync(dev)
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", default="step")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    print("bench: torch %s on %s, %d threads" % (torch.__version__, dev, torch.get_num_threads()), file=sys.stderr)
    if a.what == "conv":
        x = torch.randn(64, 32, 32, 32, device=dev, requires_grad=True).to(memory_format=fmt)
        w = torch.randn(32, 32, 3, 3, device=dev, requires_grad=True)
        def run():
            y = F.conv2d(x, w, padding=1)
            gx, gw = torch.autograd.grad(y, (x, w), y)
        t = timed(run, a.steps, dev)
        print("conv %.6f %.2f GFLOP/s" % (t, 3.0 * 2 * 64 * 32 * 32 * 32 * 32 * 9 / t * 1e-9))
    elif a.what == "gemm":
        n = 1024
        x, w = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
        t = timed(lambda: F.linear(x, w), a.steps, dev)
        print("gemm %.6f %.2f GFLOP/s" % (t, 2.0 * n ** 3 / t * 1e-9))
    else:
        torch.manual_seed(1)
        net = Part1(a.width).to(dev).to(memory_format=fmt)
        opt = adamw_groups(net, 1e-3, 1e-2)
        x = (torch.rand(a.batch, 3, a.size, a.size, device=dev) * 2 - 1).to(memory_format=fmt)
        cls = torch.arange(a.batch, device=dev) % 3
        stroma = torch.rand(a.batch, device=dev)
        binary = (torch.arange(2 * a.batch, device=dev) % 2).float().reshape(a.batch, 2)
        state = {}
        def run():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
                loss = part1_loss(net, x, cls, stroma, binary)
            loss.backward()
            opt.step()
            state["loss"] = loss.item()
        t = timed(run, a.steps, dev)
        print("step %.6f %.2f tiles/s (batch %d, %dx%d, width %d, loss %.4f)"
              % (t, a.batch / t, a.batch, a.size, a.size, a.width, state["loss"]))


if __name__ == "__main__":
    main()
