"""Pieces shared by the ageing models: the common edit interface and age/group conversions."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ganime_age.conditions import AGE_GROUPS, NUM_AGE_GROUPS, group_center


class EditOutput(NamedTuple):
    """What every ageing model's ``edit_faces`` returns: the edited crops and, if it has one, its attention mask."""

    image: torch.Tensor  # (N, 3, S, S) in [-1, 1]
    attention: torch.Tensor | None  # (N, 1, S, S) in [0, 1]; 1 keeps the input pixel


def soft_group_code(age: torch.Tensor, num_groups: int = NUM_AGE_GROUPS) -> torch.Tensor:
    """Years -> a one-hot over the age groups, blended linearly between adjacent group centres.

    Ageing models that work on groups use this so that a slider moving through the years gives a
    smooth transition instead of ten jumps.
    """
    centres = torch.tensor([group_center(i) for i in range(num_groups)], device=age.device, dtype=torch.float32)
    a = age.float().reshape(-1).clamp(float(centres[0]), float(centres[-1]))
    upper = torch.searchsorted(centres, a, right=False).clamp(1, num_groups - 1)
    lower = upper - 1
    span = centres[upper] - centres[lower]
    weight_upper = (a - centres[lower]) / span
    code = torch.zeros(a.shape[0], num_groups, device=age.device)
    code.scatter_(1, lower[:, None], (1 - weight_upper)[:, None])
    code.scatter_add_(1, upper[:, None], weight_upper[:, None])
    return code


def group_range(group: int) -> tuple[int, int]:
    return AGE_GROUPS[group]
