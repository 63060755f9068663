"""Registry of trainable systems: name -> "module:Class", imported only when chosen.

Beside the systems: ``base`` (the contract between ``training/train.py`` and a system), ``losses`` (the loss
pieces the systems share) and ``trackers`` (the trainer's experiment logs).
"""

from __future__ import annotations

import importlib

SYSTEMS: dict[str, str] = {
    "ganimation_age": "training.systems.ganimation_age:GanimationAgeSystem",
    "age_estimator": "training.systems.age_estimator:AgeEstimatorSystem",
    "aifd": "training.systems.aifd:AIFDSystem",
    "agetransgan": "training.systems.agetransgan:AgeTransGANSystem",
    "ragan": "training.systems.ragan:ReAgingGANSystem",
    "reenact": "training.systems.reenact:ReenactSystem",
    "ganimation_refiner": "training.systems.refiner:RefinerSystem",
    "agetransgan_refiner": "training.systems.agetransgan_refiner:AgeTransGANRefinerSystem",
    "ragan_refiner": "training.systems.ragan_refiner:ReAgingRefinerSystem",
}


def system_class(name: str) -> type:
    try:
        module_name, class_name = SYSTEMS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown system {name!r}; known: {', '.join(sorted(SYSTEMS))}") from None
    return getattr(importlib.import_module(module_name), class_name)
