"""Entry point of the Hugging Face Space (and of `python app.py` locally).

Hugging Face Spaces (sdk: gradio) runs ``python app.py``, so the app is built and launched under
``__main__``; importing this file builds nothing. Tools that want a module-level ``demo`` (such as
``gradio app.py`` hot reload) still get one: it is built on first access (PEP 562 ``__getattr__``).

The package lives in ``src/``. The Space installs ``requirements.txt`` *before* the repository is
copied into the image, so ``-e .`` cannot be used there; instead ``src/`` is put on ``sys.path``
here when ``ganime_age`` is not installed (locally, ``pip install -e .`` makes this a no-op).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
if importlib.util.find_spec("ganime_age") is None:
    sys.path.insert(0, str(ROOT / "src"))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_demo: Any = None


def __getattr__(name: str) -> Any:
    if name == "demo":
        global _demo
        if _demo is None:
            from space import build_app

            _demo = build_app()
        return _demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    from space import main

    main()
