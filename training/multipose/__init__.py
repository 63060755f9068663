"""Pieces of the multi-pose augmentation (``training/augment_multipose.py``).

- ``config``: AugmentConfig (every CLI flag), default models and poses;
- ``sources``: source faces from a prepared dataset or a photo folder;
- ``poses``: framing, re-posing the 3D landmarks, conditioning drawings, prompts, seeds -> jobs;
- ``generation``: loading the SD1.5 + ControlNet pipeline (Hub id or folder) and generating a batch;
- ``judge``: face / pose / identity checks and age relabelling of the outputs;
- ``output``: the resumable, ``datasets``-loadable output folder and its summary;
- ``random_pipeline``: random SD1.5-shaped pipelines from configs (CI and the benchmark).

The landmark geometry and drawings live in :mod:`ganime_age.faces.mesh`.
"""
