"""`snakeid --self-test`: prove an installation (frozen or not) can load its model and classify.

Uses only an image generated here, so it needs no files and no network.
"""

from __future__ import annotations

import io
import time

from PIL import Image, ImageDraw


def _generated_photo() -> bytes:
    """A green field with a dark winding band, as a JPEG (exercises the real decode path)."""
    image = Image.new("RGB", (640, 480), (96, 140, 70))
    draw = ImageDraw.Draw(image)
    points = [(40 + i * 20, 240 + int(80 * ((i % 8) - 4) / 4)) for i in range(29)]
    draw.line(points, fill=(60, 45, 30), width=34, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def run_self_test(weights_dir=None) -> dict:
    started = time.perf_counter()
    summary: dict = {"ok": False}
    try:
        from .imageload import load_image_bytes
        from .predictor import Predictor
        from .results import FileResult

        predictor = Predictor.load(weights_dir)
        summary["model_version"] = predictor.bundle.version
        # Which model was tested: an installation can pick up another one (override, checkout, wheel).
        summary["weights_dir"] = str(predictor.bundle.directory)
        summary["classes"] = len(predictor.bundle.classes)
        summary["model_load_s"] = round(time.perf_counter() - started, 3)
        loaded = load_image_bytes(_generated_photo(), name="self-test image", min_side=predictor.preprocessing.resize_size)
        prediction = predictor.predict_images([loaded.image])[0]
        result = FileResult(path="<generated>", prediction=prediction, warnings=loaded.warnings).to_json()
        probs = [c["probability"] for c in result["top"]]
        well_formed = (
            result["status"] == "ok"
            and result["verdict"] in ("species", "unsure", "not_snake")
            and len(probs) == predictor.top_k
            and all(0.0 <= p <= 1.0 for p in probs)
            and probs == sorted(probs, reverse=True)
        )
        summary.update(result=result, ok=bool(well_formed))
        if not well_formed:
            summary["error"] = "the classification result was malformed"
    except Exception as exc:  # the point is to report, not to crash
        summary["error"] = f"{type(exc).__name__}: {exc}"
    summary["total_s"] = round(time.perf_counter() - started, 3)
    return summary
