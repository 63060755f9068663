"""The evaluations behind ``training/evaluate.py``'s subcommands, and what they share.

- ``gates``: ``evaluate.py gates``, the default editor's quality gates on held-out photos;
- ``table1``: ``evaluate.py table1``, this project's Table I (the engine alone and with each refiner);
- ``reenact``: ``evaluate.py reenact``, self- and cross-identity reenactment;
- ``turning``: ``evaluate.py turning``, reenactment by the 3-D turn (issue 31's gates);
- ``yaw_bands``: ``evaluate.py yaw-bands``, age estimators' error per band of head yaw;
- ``fgnet_floors``: identity floors of real photos of one FG-NET person across a span of years (``ages``, ``gates``);
- ``judges``: dlib's face descriptor and Cydral's age network, outside every loss (``python -m
  training.evaluation.judges --help`` measures their calibration);
- ``metrics``: the measures (identity thresholds, age statistics, AU read-outs, tables).
"""
