"""The launcher's environment, checked before anything is measured (torch-free).

torchrun (and Slurm's srun or a PyTorchJob, which start torchrun) hands each process RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; torch.distributed's env:// rendezvous reads
them (torch/distributed/rendezvous.py, _env_rendezvous_handler). A typo there otherwise surfaces as
a traceback from deep inside torch, or as a process that waits for peers that never come.
COSTBENCH_TIMEOUT_S bounds start-up and each message size (kernels.collectives.Watchdog).
Every problem is an InputError of one line naming the variable (exit 2).
"""

import dataclasses
import math
import os
import socket

from cost_models.errors import InputError

DEFAULT_TIMEOUT_S = 300.0  # kernels.collectives.STEP_TIMEOUT_S; kept here so validation needs no torch
LAUNCH_HINT = "launch with torchrun --nproc-per-node N, which sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT"


@dataclasses.dataclass(frozen=True)
class Launch:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    timeout_s: float = DEFAULT_TIMEOUT_S
    distributed: bool = False  # WORLD_SIZE was set: join the env:// rendezvous


def _whole(env, name: str, lo: int, hi: int | None = None, what: str = "") -> int:
    text = env[name]
    try:
        value = int(text.strip())
    except ValueError:
        raise InputError(f"{name}={text!r}: expected a whole number{what}") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
        raise InputError(f"{name}={text!r}: expected a whole number {bound}{what}")
    return value


def timeout_s(env=None) -> float:
    """COSTBENCH_TIMEOUT_S: a positive, finite number of seconds (default 300)."""
    env = os.environ if env is None else env
    text = env.get("COSTBENCH_TIMEOUT_S")
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"COSTBENCH_TIMEOUT_S={text!r}: expected a positive number of seconds "
                         "(how long start-up or one message size may take before a rank counts as hung)")
    return value


def from_env(env=None) -> Launch:
    """The validated launch environment; a single process when WORLD_SIZE is unset."""
    env = os.environ if env is None else env
    timeout = timeout_s(env)
    if "WORLD_SIZE" not in env:
        return Launch(timeout_s=timeout)
    world = _whole(env, "WORLD_SIZE", 1, what=" (the number of processes)")
    if "RANK" not in env:
        raise InputError(f"WORLD_SIZE={env['WORLD_SIZE']} is set but RANK is not: {LAUNCH_HINT}")
    rank = _whole(env, "RANK", 0, world - 1, f" (WORLD_SIZE is {world})")
    # a node runs at most the world's ranks: LOCAL_RANK=5 of 2 waited out the start-up timeout
    local = _whole(env, "LOCAL_RANK", 0, world - 1, f" (WORLD_SIZE is {world})") if "LOCAL_RANK" in env else 0
    if world == 1 and not env.get("MASTER_ADDR"):
        return Launch(timeout_s=timeout)  # a group of one needs no rendezvous
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not env.get(name, "").strip():
            raise InputError(f"WORLD_SIZE={world} but {name} is not set: {LAUNCH_HINT}")
    _whole(env, "MASTER_PORT", 1, 65535, " (a TCP port)")
    return Launch(rank, world, local, timeout, distributed=True)


def check_master(env=None) -> None:
    """MASTER_ADDR resolves: a name that does not was four lines of torch's socket warnings and a
    start-up failure (exit 3); it is the environment's mistake, named in one line (exit 2)."""
    env = os.environ if env is None else env
    addr = env.get("MASTER_ADDR", "")   # as torch's rendezvous reads it: spaces around it included
    if not addr.strip():
        return
    try:
        socket.getaddrinfo(addr, None)
    except UnicodeError as e:
        raise InputError(f"MASTER_ADDR={addr!r}: not a host name ({e})") from None
    except socket.gaierror as e:
        # only a name that does not exist: a temporary failure (EAI_AGAIN: a pod whose DNS record is
        # not up yet) is left to the rendezvous, which retries until the start-up timeout
        if e.errno == socket.EAI_NONAME:
            raise InputError(f"MASTER_ADDR={addr!r}: cannot resolve it ({e.strerror}); give rank 0's host "
                             "name or IP address") from None
