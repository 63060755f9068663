"""The Space's tabs. Each is a module with ``TITLE: str`` and ``build_tab(editor_provider) -> None``.

Add a tab by writing such a module and listing it in :data:`TAB_MODULES` (in display order).

`editor_provider` is a :class:`space.models.EditorProvider`. In a tab's heavy functions (decorated
with :func:`space.gpu.gpu` and, inside that, :func:`space.common.user_errors`) use
``with editor_provider.session(model_key) as editor:`` (one event at a time per editor);
``editor_provider.choices()`` lists the editors for a selector, and
:func:`space.common.photo_block` builds the usual photo + examples + face + model inputs.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TAB_MODULES: tuple[str, ...] = (
    "space.tabs.age",
    "space.tabs.expression",
    "space.tabs.reenact",
)


def load_tabs(names: tuple[str, ...] | list[str] = TAB_MODULES) -> list[ModuleType]:
    """Import the tab modules, checking each has the two names the app needs."""
    modules = []
    for name in names:
        module = importlib.import_module(name)
        if not isinstance(getattr(module, "TITLE", None), str) or not callable(getattr(module, "build_tab", None)):
            raise TypeError(f"{name} is not a Space tab: it needs TITLE (str) and build_tab(editor_provider)")
        modules.append(module)
    return modules
