"""The training data: raw datasets parsed, photos analysed, prepared datasets read, the refiner's pairs built.

- ``sources``: parse raw datasets (UTKFace, CFEE with its FACS codes, FFHQ-Aging, CACD, folder + CSV) into items;
- ``prepared``: read a prepared dataset (``training/prepare_data.py`` output) and the refiner's pairs as torch
  datasets;
- ``face_records``: every photo of a source analysed once at its own resolution, cached (the engine's fit, the
  gates);
- ``refiner``: build the refiner's pairs, the fitted engine's edits beside the real photos they should match
  (``python training/data/refiner.py --help``).
"""
