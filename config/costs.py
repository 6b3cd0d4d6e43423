"""What compute costs, to put a price on each job. ESTIMATES, not a bill.

Prices are Modal's published on-demand per-second rates converted to USD per hour (as listed on
modal.com/pricing in 2025; check there for today's). A job's cost is the seconds its container
spent on that job times the hourly rate: cold starts, idle time before scale-down, storage and
egress are not included, so the real bill is higher. Override or add rates with
`DROPREEL_GPU_PRICES='{"H100": 3.95}'`.
"""

from __future__ import annotations

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
"""USD per physical CPU core-hour, for CPU-only engines (memory is not counted)."""


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
    gpu: str | None, cpu_cores: float = 0.0, overrides: dict[str, float] | None = None
) -> float:
    """Hourly estimate for a container with `gpu` (None for CPU-only) and `cpu_cores`."""
    if gpu is None:
        rate = (overrides or {}).get("CPU", CPU_CORE_USD_PER_HOUR)
        return round(rate * cpu_cores, 6)
    name, count = parse_gpu(gpu)
    table = {**GPU_USD_PER_HOUR, **{k.upper(): v for k, v in (overrides or {}).items()}}
    if name not in table:
        known = ", ".join(sorted(GPU_USD_PER_HOUR))
        raise UnknownGpu(
            f"GPU {gpu!r} is not one Modal offers ({known}); fix DROPREEL_MODAL_GPU or add its "
            "price to DROPREEL_GPU_PRICES"
        )
    return round(table[name] * count, 6)


def job_cost(seconds: float, hourly: float) -> float:
    return round(seconds * hourly / 3600, 6)
