"""Where and how training runs: device choice, precision, seeds, RNG state, distributed setup,
and a second lane (another stage in a process of its own, beside this one).

Shared by the training loops (train_gan, train_encoder, train_conditional) so that all of them
pick devices, resume, keep an EMA and scale the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import random
import signal
import sys

import numpy as np
import torch
import torch.distributed as dist


def pick_device(name: str = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu. Under torchrun each rank takes its LOCAL_RANK GPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes in bf16 natively: a CUDA GPU, or a CPU with AVX512-BF16 or AMX
    (as oneDNN reports it). Elsewhere bf16 is emulated: on a 2-core AVX2-only EPYC the demo GAN
    step took 8.5 s in bf16 against 0.3 s in fp32."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def use_bf16(setting: str, device: torch.device) -> bool:
    """`auto` turns bf16 autocast on where the device has it natively (native_bf16): there it is
    1.75x faster than fp32 on CPU (README, Speed); `on` forces it, `off` keeps fp32."""
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"bf16 must be auto, on or off, not {setting!r}")
    if setting == "auto":
        return native_bf16(device)
    return setting == "on"


def autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def configure_cpu(threads: int = 0) -> None:
    """torch's CPU threads (0 = torch's default), and glibc's malloc told to keep freed memory.

    With its defaults glibc gives large freed blocks back to the kernel (mmap'd ones at once, the
    heap's top above a trim threshold), so every training step faults the same activation
    buffers in again, page by page: on a 2-core CPU about 13,600 page faults per demo-width GAN
    step. keep_freed_memory keeps them, as tcmalloc would, with nothing to install
    (benchmarks/allocator.py measures all three). Without glibc (macOS) it does nothing; with
    tcmalloc preloaded it tunes a malloc nobody calls."""
    if threads > 0:
        torch.set_num_threads(max(threads, _widened_to))  # a widened side lane keeps its cores
    keep_freed_memory()


# ---- a second lane: another stage in a process of its own, beside this one
#
# On 2 cores a demo-width training step runs only 1.45-1.76x as fast as on one: many of its ops
# are too small to split between threads. Two 1-thread processes side by side each keep their
# 1-thread speed, so two independent stages, one core each, get 1.16-1.30x the work done of the
# same two one after the other on both cores (benchmarks/lanes.py); when one lane runs out of
# work the other takes its core (SideLane.widen). Spawned, not forked: a fork of a process whose
# OpenMP pool has run can hang.

_widened_to = 0  # in a side lane: the threads widen() gave it, which configure_cpu keeps to
STARTUP_TIMEOUT_S = 300  # a fresh Python importing torch: seconds, minutes on a cold disk


def side_lane_helps(device: torch.device, threads: int = 0) -> bool:
    """Whether a side lane speeds things up here: on a CPU of 2 cores or more, with torch's own
    thread count (an explicit --threads asks for one process and that many threads), on Linux
    (the lane is widened with SIGUSR1 and dies with its parent through prctl)."""
    return (device.type == "cpu" and threads == 0 and torch.get_num_threads() >= 2
            and sys.platform.startswith("linux"))


class SideLane:
    """`fn(*args, **kwargs)` in a spawned process with `threads` CPU threads, beside this one.

    widen() gives it `widen_to` threads (default: all of torch's); result() waits for fn's
    return value, or raises its exception; finish() does both once this process's own work is
    done. The process dies with this one (also on kill -9), so an interrupted demo leaves no
    trainer behind: its checkpoint is resumed by the next run."""

    def __init__(self, fn, *args, threads: int = 1, widen_to: int = 0, **kwargs):
        self.name = getattr(fn, "__name__", "side lane")
        self.threads_here = torch.get_num_threads()  # what finish() gives this process back
        context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_side_lane_main, daemon=True,
            args=(send, os.getpid(), threads, widen_to or self.threads_here, fn, args, kwargs))
        self.process.start()
        send.close()  # only the child writes: its end closing is how a dead child shows (EOFError)
        # wait until it runs, its SIGUSR1 handler set (before, widen() would kill it: SIGUSR1's
        # default), and so that a lane that cannot start stops us now, not after our own work
        if not self._receive.poll(STARTUP_TIMEOUT_S):
            self.process.kill()
            raise RuntimeError(f"the side lane for {self.name} did not start within {STARTUP_TIMEOUT_S} s")
        try:
            self._receive.recv()
        except EOFError:
            self.process.join()
            raise RuntimeError(
                f"the side lane for {self.name} could not start (exit code {self.process.exitcode}; its error is "
                "above). Python starts it by importing the main script again: a script that calls this must keep "
                "its work under `if __name__ == \"__main__\":`") from None

    def widen(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # it may have finished meanwhile
            if self.process.is_alive():
                os.kill(self.process.pid, signal.SIGUSR1)

    def finish(self):
        """This process's own work is done (its loops ran on fewer threads): widen the lane, wait
        for its result, and give this process back the threads it had when the lane started."""
        self.widen()
        try:
            return self.result()
        finally:
            torch.set_num_threads(self.threads_here)

    def result(self):
        try:
            ok, value = self._receive.recv()
        except EOFError:  # the process died before it could answer (killed, out of memory)
            self.process.join()
            raise RuntimeError(f"the side lane running {self.name} died with exit code {self.process.exitcode} "
                               "(its output is above); run again to resume from its last checkpoint") from None
        self.process.join()
        if not ok:
            raise value
        return value


def _side_lane_main(send, parent: int, threads: int, widen_to: int, fn, args, kwargs) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG: die with the parent
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    sys.stdout.reconfigure(line_buffering=True)  # its lines appear as they are written, between the parent's

    def widen(signum, frame):  # runs between two bytecodes of the main thread: no op is in flight
        global _widened_to
        _widened_to = widen_to
        torch.set_num_threads(widen_to)

    signal.signal(signal.SIGUSR1, widen)
    torch.set_num_threads(threads)
    send.send("started")
    try:
        value = fn(*args, **kwargs)
    except BaseException as e:
        try:
            send.send((False, e))
        except Exception:  # an exception that does not pickle: its text still reaches the parent
            send.send((False, RuntimeError(f"{type(e).__name__}: {e}")))
        raise
    send.send((True, value))


def keep_freed_memory() -> bool:
    """glibc mallopt: blocks up to 32 MiB (the most it allows) come from the heap, not from mmap,
    and the heap is never trimmed, so a step reuses the last step's pages. Blocks above that
    still go back to the kernel: serving those from the heap too would leave holes it cannot
    reuse. True where it took effect."""
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # malloc.h
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the malloc this process links: glibc's on Linux
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG a training step touches, in a form torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, *rest = state["python"]
    random.setstate((version, tuple(rest[0]), rest[1]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def gathered_rng_states(world_size: int) -> list[dict]:
    """Every rank's RNG states, in rank order (a collective: all ranks must call it)."""
    if world_size == 1:
        return [rng_state()]
    states = [None] * world_size
    dist.all_gather_object(states, rng_state())
    return states


def restore_rng(states: list[dict], rank: int, world_size: int, reseed: int) -> None:
    """This rank's RNG states from a checkpoint; with another number of processes than it was
    written by, continue (not bit-exactly) from a fresh seed."""
    if len(states) == world_size:
        set_rng_state(states[rank])
    else:
        print(f"resume: checkpoint has {len(states)} rank RNG states, this run {world_size}; reseeding")
        seed_everything(reseed)


def broadcast(obj, world_size: int):
    """Rank 0's value of a picklable object, on every rank (e.g. the run directory)."""
    if world_size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def finish_distributed() -> bool:
    """Leave the process group, if any; True on the process that reports (rank 0 or alone).
    Rank 0 may still be writing its last checkpoint after the final collective: wait for it,
    or the other ranks tear down their gloo connections mid-write and rank 0 aborts in C++."""
    if not dist.is_initialized():
        return True
    master = dist.get_rank() == 0
    dist.barrier()
    dist.destroy_process_group()
    return master


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """One step of the exponential moving average of the weights, with a warm-up so that early
    samples are not stale; buffers (BatchNorm statistics) are copied."""
    decay = min(decay, (1 + step) / (10 + step))
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def init_distributed() -> tuple[int, int]:
    """Join the process group when launched by torchrun; return (rank, world_size).

    nccl on GPUs, gloo on CPU. A plain `python` launch is world_size 1 and needs no group.
    """
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if world_size == 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()
