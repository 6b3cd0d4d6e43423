"""What compute costs, to put a price on each job. ESTIMATES, not a bill.

Modal bills a container per second for its GPUs, its CPU cores and its memory (the reservation
or the use, whichever is higher), from the moment it starts loading. So a job's price here is
its container's whole hourly rate (GPUs + `cpu=` cores + `memory=` GiB, as the deploy plan
requests them) times the seconds the container spent on it, and a container's first job also
carries the container's load time (`@modal.enter`: imports, engine and checkpoint). Not
included: the idle time before scale-down, the Volume, storage and egress, so the real bill is
somewhat higher. Override or add rates with `DROPREEL_GPU_PRICES='{"H100": 3.95, "CPU": 0.047,
"MEMORY": 0.008}'` (GPU types per GPU-hour, CPU per core-hour, MEMORY per GiB-hour).
"""

from __future__ import annotations

PRICES_AS_OF = "2025"
PRICES_SOURCE = "https://modal.com/pricing"
"""Where the rates below come from and when they were read (on-demand, per second, converted to
per hour). They could not be re-checked from the offline machine that last edited this table:
compare with the page, and override what changed with DROPREEL_GPU_PRICES."""

GPU_USD_PER_HOUR: dict[str, float] = {
    "T4": 0.59,
    "L4": 0.80,
    "A10": 1.10,
    "A10G": 1.10,
    "L40S": 1.95,
    "A100": 2.10,
    "A100-40GB": 2.10,
    "A100-80GB": 2.50,
    "H100": 3.95,
    "H200": 4.54,
    "B200": 6.25,
}
"""USD per GPU-hour (each GPU; a container with `H100:2` costs twice the H100 rate)."""

CPU_CORE_USD_PER_HOUR = 0.047
"""USD per physical CPU core-hour ($0.0000131 per core-second), GPU containers included."""

MEMORY_GIB_USD_PER_HOUR = 0.008
"""USD per GiB-hour of container memory ($0.00000222 per GiB-second)."""


class UnknownGpu(ValueError):
    """A GPU type that Modal does not offer, or has no price."""


def parse_gpu(gpu: str) -> tuple[str, int]:
    """'h100:2' -> ('H100', 2); 'H100!' (no automatic upgrade) -> ('H100', 1)."""
    name, _, count = gpu.strip().partition(":")
    name = name.upper().rstrip("!+")
    try:
        n = int(count) if count else 1
    except ValueError:
        raise UnknownGpu(f"GPU {gpu!r}: the count after ':' must be a whole number") from None
    if n < 1:
        raise UnknownGpu(f"GPU {gpu!r}: the count must be at least 1")
    return name, n


def usd_per_hour(
    gpu: str | None,
    cpu_cores: float = 0.0,
    overrides: dict[str, float] | None = None,
    memory_mib: int = 0,
) -> float:
    """Hourly estimate for a container with `gpu` (None for CPU-only), `cpu_cores` physical
    cores and `memory_mib` of memory."""
    table = {k.upper(): v for k, v in (overrides or {}).items()}
    rate = table.get("CPU", CPU_CORE_USD_PER_HOUR) * cpu_cores
    rate += table.get("MEMORY", MEMORY_GIB_USD_PER_HOUR) * memory_mib / 1024
    if gpu is not None:
        name, count = parse_gpu(gpu)
        gpus = {**GPU_USD_PER_HOUR, **table}
        if name not in gpus or name in ("CPU", "MEMORY"):
            known = ", ".join(sorted(GPU_USD_PER_HOUR))
            raise UnknownGpu(
                f"GPU {gpu!r} is not one Modal offers ({known}); fix DROPREEL_MODAL_GPU or add "
                "its price to DROPREEL_GPU_PRICES"
            )
        rate += gpus[name] * count
    return round(rate, 6)


def job_cost(seconds: float, hourly: float) -> float:
    return round(seconds * hourly / 3600, 6)
