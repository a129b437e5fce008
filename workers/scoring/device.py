"""Which torch device the scoring worker runs on: `auto` picks CUDA when present."""

from __future__ import annotations

from typing import Literal

import torch

from workers.errors import UserError

DeviceChoice = Literal["auto", "cpu", "cuda"]
CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def select_device(choice: str = "auto") -> torch.device:
    """`auto`: CUDA if available, else CPU; `cuda` without a GPU is a user error."""
    if choice not in CHOICES:
        raise UserError(f"--device {choice!r} is not one of {', '.join(CHOICES)}")
    if choice == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if choice == "cuda":
        raise UserError("--device cuda: no CUDA device is visible to torch here; "
                        "use --device auto or --device cpu")
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    """A short human description: `cpu` or `cuda (<GPU name>)`."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"
