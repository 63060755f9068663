"""One-off tools: each measured, ported or calibrated something the package ships once, and is kept to redo it.

- ``calibrate_aus``: the blendshape -> AU read-out (``ganime_age/faces/au_calibration.json``) fitted to CFEE;
- ``convert_dlib_age``: Cydral's age and gender networks ported from ONNX to the package's torch folders;
- ``compare_age_estimators``: the two age estimators per age band, and their reading curves;
- ``compare_sex_classifiers``: the engine's sex classifier and Cydral's per age band;
- ``measure_dlib_chip``: how the landmark-made chip reproduces dlib's.

Each runs as ``python -m training.tools.NAME --help``.
"""
