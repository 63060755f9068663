"""Pieces of the multi-pose augmentation (``training/multipose/augment.py``).

- ``config``: AugmentConfig (every CLI flag), the backends, default models and poses;
- ``sources``: source faces from a prepared dataset or a photo folder (one split of it, train by default);
- ``poses``: framing, re-posing the 3D landmarks, conditioning drawings, prompts, seeds -> jobs;
- ``mesh``: the mesh backend (the default): the photo's own head turned in 3-D, aimed, judged;
- ``generation``: the ControlNet backend: loading the SD1.5 + ControlNet pipeline (Hub id or folder) and
  generating a batch;
- ``judge``: face / pose / identity checks and age relabelling of the outputs;
- ``output``: the resumable, ``datasets``-loadable output folder and its summary;
- ``grid``: a JPEG grid of an output folder's kept images beside their sources;
- ``random_pipeline``: random SD1.5-shaped pipelines from configs (CI and the benchmark).

The landmark geometry and drawings live in :mod:`ganime_age.faces.mesh`.
"""
