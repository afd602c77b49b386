"""napari's commands, counted from the Qt actions of napari's app-model menus.

napari's menus (the menu bar, the layer list's context menu, plugin menus) are app-model menus: each entry is a
``QMenuItemAction`` whose ``triggered`` signal runs the command, from a click or from its keyboard shortcut.
app-model keeps one such action per menu item and application (``QMenuItemAction.create`` returns the cached
one), so connecting to the action of every menu item the manifest declares, whether napari already built its
menu or will build it later (a context menu, on its first use), counts every run from a menu or a shortcut.
app-model itself has no signal for executed commands: a command run from the command palette or from code is
not counted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection

from app_model import Application
from app_model.backends.qt import QMenuItemAction
from app_model.types import MenuItem
from qtpy.QtGui import QAction
from qtpy.QtWidgets import QApplication

from napari_consentry._guard import guard, guarded

__all__ = ["COUNTED", "CommandCounter", "event_name"]

#: The dynamic property that marks an action this process connected to (so that it is connected once).
COUNTED = "napari_consentry_counted"


def event_name(command_id: str) -> str:
    """The event a napari command counts as: its id written as NAP-8 writes it, with ``:``.

    ``napari.window.file.restart`` (napari 0.6 and later) and ``napari:window:file:restart`` (napari 0.5) are both
    ``napari:window:file:restart``, the name in NAP-8's sample ``command_usage``.
    """
    return command_id.replace(".", ":")


class CommandCounter:
    """Counts the napari commands ``declared`` (event names) whenever their menu action is triggered.

    ``count(name)`` is called with the event name. The menus are looked at again whenever app-model's menus
    change (a plugin registered, enabled or disabled); :meth:`close` disconnects everything.
    """

    def __init__(self, app: Application, declared: Collection[str], count: Callable[[str], None]) -> None:
        self._app = app
        self._declared = frozenset(declared)
        self._count = count
        #: Each action connected and its slot; holding the actions also keeps app-model's cached ones alive.
        self._hooked: list[tuple[QAction, Callable[..., None]]] = []
        app.menus.menus_changed.connect(self._menus_changed)
        self.scan()

    @property
    def commands(self) -> list[str]:
        """The events of the actions connected so far."""
        return sorted({event_name(action.objectName()) for action, _ in self._hooked})

    @guarded
    def scan(self) -> None:
        """Connect to the action of every declared menu item, and to any declared action that already exists."""
        application = QApplication.instance()
        for _menu, items in list(self._app.menus):
            for item in list(items):
                if isinstance(item, MenuItem) and event_name(item.command.id) in self._declared:
                    with guard():
                        self._hook(QMenuItemAction.create(item, app=self._app, parent=application))
        if application is not None:
            for action in application.findChildren(QAction):
                self._hook(action)

    def _hook(self, action: QAction) -> None:
        name = event_name(action.objectName())  # app-model names each action after its command's id
        if name not in self._declared or action.property(COUNTED):
            return
        slot = functools.partial(self._triggered, name)
        action.triggered.connect(slot)
        action.setProperty(COUNTED, True)  # noqa: FBT003 - Qt's property value
        self._hooked.append((action, slot))

    def _triggered(self, name: str, *_: object) -> None:  # `triggered` passes the checked state
        with guard():
            self._count(name)

    def _menus_changed(self, *_: object) -> None:
        self.scan()

    @guarded
    def close(self) -> None:
        """Stop counting: disconnect from every action and from app-model's menus."""
        with guard():
            self._app.menus.menus_changed.disconnect(self._menus_changed)
        hooked, self._hooked = self._hooked, []
        for action, slot in hooked:
            with guard():  # an action deleted meanwhile: nothing to disconnect
                action.triggered.disconnect(slot)
                action.setProperty(COUNTED, False)  # noqa: FBT003
