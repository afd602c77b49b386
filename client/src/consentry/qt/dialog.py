"""The consent dialog: the manifest's text and levels, the exact reports each level would send, and three answers.

The dialog only shows a :class:`~consentry._consent.asking.ConsentRequest` and says which answer the user chose; it
records
nothing itself (:class:`~consentry.qt.QtTelemetry` does, through :func:`consentry.set_consent`). Its default
button is "Don't send", and Escape or closing the window dismisses it without an answer: nothing is stored or
sent unless the user actively chooses.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QFontDatabase
from qtpy.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from consentry._consent.answers import Mode
from consentry._consent.asking import ConsentRequest
from consentry._guard import guarded
from consentry.manifest import NONE_LEVEL

__all__ = ["TEMPORARY_CONSENT", "Answer", "ConsentDialog"]

#: How long "yes for 30 days" lasts; then the question is asked again and nothing is sent meanwhile.
TEMPORARY_CONSENT = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Answer:
    """What the user chose in the dialog: a mode, a level (``None`` with ``off``) and an optional validity."""

    mode: Mode
    level: str | None = None
    valid_for: datetime.timedelta | None = None


class ConsentDialog(QDialog):
    """Asks whether an application may send usage statistics, and at which level.

    Shows the manifest's title and consent text, one choice per level that collects something (with the level's
    description and the host its reports go to), and the exact reports the chosen level would send for a day of
    use, byte for byte as :func:`consentry.wire.encode` writes them. The buttons: "Don't send" (the default, also
    Enter), "Yes for 30 days" and "Yes". When the user chooses, :attr:`answer` is set and :attr:`answered` is
    emitted with it; Escape and closing the window leave :attr:`answer` at ``None``.
    """

    answered = Signal(object)  # the Answer

    def __init__(
        self,
        request: ConsentRequest,
        parent: QWidget | None = None,
        *,
        temporary: datetime.timedelta = TEMPORARY_CONSENT,
    ) -> None:
        super().__init__(parent)
        self.request = request
        self.answer: Answer | None = None
        self._temporary = temporary
        self.setWindowTitle(f"{request.title}: usage statistics")
        self.setSizeGripEnabled(True)
        self.levels = QButtonGroup(self)
        self.level_buttons: dict[str, QRadioButton] = {}

        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setTabChangesFocus(True)  # Tab leaves the preview: keyboard users are not trapped in it
        self.preview.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.preview.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.preview.setMinimumHeight(160)
        self.preview.setAccessibleName("Exact reports that would be sent")
        self.scroll_area = self._content()

        self.no_button = QPushButton("&Don't send")
        self.temporary_button = QPushButton(f"Yes for &{temporary.days} days")
        self.yes_button = QPushButton("&Yes")
        self.no_button.clicked.connect(lambda: self._choose(Answer("off")))
        self.yes_button.clicked.connect(lambda: self._choose(Answer("on", self.chosen_level())))
        self.temporary_button.clicked.connect(
            lambda: self._choose(Answer("on", self.chosen_level(), valid_for=self._temporary))
        )
        buttons = QDialogButtonBox()
        buttons.addButton(self.yes_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.temporary_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.no_button, QDialogButtonBox.ButtonRole.RejectRole)

        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll_area, 1)
        layout.addWidget(buttons)
        self.no_button.setDefault(True)  # once the button is in the dialog, which then keeps it as its default
        self.resize(600, 640)
        self._show_preview()
        checked = self.levels.checkedButton()
        if checked is not None:
            checked.setFocus()  # arrow keys change the level; Enter still means "Don't send"

    def _content(self) -> QScrollArea:
        """Everything above the buttons, in an area that scrolls vertically: readable at any width."""
        content = QWidget()
        column = QVBoxLayout(content)
        heading = _label(self.request.title)
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        column.addWidget(heading)
        for paragraph in _paragraphs(self.request.text):
            column.addWidget(_label(paragraph))
        column.addWidget(self._level_choices())
        self.preview_label = _label("&What this level would send, for a day of use (exactly these bytes):")
        self.preview_label.setBuddy(self.preview)
        column.addWidget(self.preview_label)
        column.addWidget(self.preview, 1)
        scroll = QScrollArea()
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # text wraps instead
        return scroll

    def _level_choices(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        current = self.request.current.level if self.request.current.mode != "off" else None
        collecting = [choice for choice in self.request.levels if choice.name != NONE_LEVEL]
        for choice in collecting:
            button = QRadioButton(choice.name)
            button.setAccessibleDescription(choice.description)
            self.levels.addButton(button)
            self.level_buttons[choice.name] = button
            button.toggled.connect(self._show_preview)
            column.addWidget(button)
            about = choice.description + (f" Sent to {choice.host}." if choice.host else "")
            detail = _label(about)
            detail.setIndent(24)
            column.addWidget(detail)
        chosen = current if current in self.level_buttons else collecting[0].name if collecting else None
        if chosen is not None:
            self.level_buttons[chosen].setChecked(True)
        return box

    # ---- what is shown --------------------------------------------------------------------------------------
    def chosen_level(self) -> str | None:
        """The level selected in the dialog."""
        for name, button in self.level_buttons.items():
            if button.isChecked():
                return name
        return None

    def preview_bytes(self) -> bytes:
        """The example reports the chosen level would send, as shown: the bytes :func:`consentry.wire.encode` writes."""
        level = self.chosen_level()
        return b"".join(self.request.examples_upto(level)) if level is not None else b""

    @guarded(None)
    def _show_preview(self, *_: object) -> None:  # connected to `toggled`, which passes the new state
        self.preview.setPlainText(self.preview_bytes().decode("ascii"))

    # ---- answers ----------------------------------------------------------------------------------------------
    @guarded(None)
    def _choose(self, answer: Answer) -> None:
        self.answer = answer
        self.answered.emit(answer)
        self.accept()


def _label(text: str) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # the manifest's text is shown as written, never as markup
    label.setWordWrap(True)  # readable at any width: the dialog scrolls vertically, never sideways
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _paragraphs(text: str) -> list[str]:
    """The manifest's text as paragraphs: lines joined, blank lines kept as breaks."""
    blocks = [" ".join(line.strip() for line in block.splitlines()) for block in text.strip().split("\n\n")]
    return [block for block in blocks if block]
