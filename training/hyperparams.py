"""Training defaults shown in the job form, and their validation."""

from __future__ import annotations

from typing import Any, TypedDict


class Hyperparams(TypedDict):
    r: int
    alpha: int
    dropout: float
    lr: float
    epochs: int
    batch_size: int
    grad_accum: int
    max_seq_len: int
    target_modules: str
    checkpoint_every: int
    seed: int
    warmup_ratio: float


DEFAULTS: Hyperparams = {
    "r": 16,
    "alpha": 32,
    "dropout": 0.05,
    "lr": 2e-4,
    "epochs": 3,
    "batch_size": 4,
    "grad_accum": 1,
    "max_seq_len": 1024,
    # "all-linear" covers Phi-3's fused qkv_proj / gate_up_proj as well as split projections.
    "target_modules": "all-linear",
    "checkpoint_every": 50,
    "seed": 0,
    "warmup_ratio": 0.05,
}

_LIMITS: dict[str, tuple[float, float]] = {
    "r": (1, 256),
    "alpha": (1, 1024),
    "dropout": (0, 0.5),
    "lr": (1e-7, 1e-2),
    "epochs": (1, 100),
    "batch_size": (1, 512),
    "grad_accum": (1, 256),
    "max_seq_len": (32, 32768),
    "checkpoint_every": (1, 100000),
    "seed": (0, 2**31 - 1),
    "warmup_ratio": (0, 0.5),
}


class HyperparamsInvalid(ValueError):
    pass


def hyperparams_clean(given: dict[str, Any] | None) -> Hyperparams:
    out: dict[str, Any] = dict(DEFAULTS)
    for key, value in (given or {}).items():
        if key not in DEFAULTS:
            raise HyperparamsInvalid(f"unknown hyperparameter '{key}'")
        if value is None or value == "":
            continue
        kind = type(DEFAULTS[key])  # type: ignore[literal-required]
        try:
            cast = kind(value)
        except (TypeError, ValueError):
            raise HyperparamsInvalid(f"{key} must be a {kind.__name__}, got {value!r}") from None
        if key in _LIMITS:
            low, high = _LIMITS[key]
            if not low <= cast <= high:
                raise HyperparamsInvalid(f"{key} must be between {low:g} and {high:g}, got {cast}")
        out[key] = cast
    return out  # type: ignore[return-value]
