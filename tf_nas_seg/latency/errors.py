"""Errors of latency profiling (a light module: the CLI reports them before TF starts)."""


class TimingError(RuntimeError):
    """Measurements cannot be taken as asked (device absent, threads already fixed)."""
