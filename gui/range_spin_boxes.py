"""The settings form's number fields: the arrows keep to the limits table's range (engine/limits.py) while a typed
value outside it stands as typed, for the form to flag; a log-scale field for rates."""

from __future__ import annotations

import math

from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox

WIDE = 2**31 - 1  # a field's widget range: any typed number stands; the limits table judges it (engine/limits.py)


class _Limited:
    """Arrows stay within the limits table's range; a typed value outside it stays as typed, for the panel to flag.
    Sized for the values of that range, not for the widget's wide one."""

    limits: tuple[float, float] = (0, 0)

    def _narrowed(self, hint):
        fm = self.fontMetrics()
        wide = max(fm.horizontalAdvance(self.textFromValue(v)) for v in (self.minimum(), self.maximum()))
        need = max(fm.horizontalAdvance(self.textFromValue(v)) for v in self.limits)
        hint.setWidth(hint.width() - max(0, wide - need))
        return hint

    def sizeHint(self):  # noqa: N802 - Qt name
        return self._narrowed(super().sizeHint())

    def minimumSizeHint(self):  # noqa: N802
        return self._narrowed(super().minimumSizeHint())

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt name
        lo, hi = self.limits
        self.setValue(min(max(self.value() + steps * self.singleStep(), lo), hi))


class RangeSpinBox(_Limited, QSpinBox):
    pass


class RangeDoubleSpinBox(_Limited, QDoubleSpinBox):
    pass


class LogSpinBox(_Limited, QDoubleSpinBox):
    """A positive number edited on a log scale: the arrows multiply or divide by about 2 (1, 2, 5, 10, ...)."""

    def __init__(self, lo: float, hi: float, parent=None):
        super().__init__(parent)
        self.setDecimals(8)
        self.setRange(0.0, WIDE)  # any typed value stands, so that one out of [lo, hi] is shown as such
        self.limits = (lo, hi)  # where the arrows stay

    def textFromValue(self, v: float) -> str:  # noqa: N802 - Qt name
        return f"{v:.3g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text, pos):  # noqa: D401 - Qt signature
        from PySide6.QtGui import QValidator

        t = text.strip()
        try:
            v = float(t)
        except ValueError:
            ok = t == "" or t in ("-", ".", "e") or t.endswith(("e", "e-", "E", "E-"))
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        ok = self.minimum() <= v <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        lo, hi = self.limits
        v = min(max(self.value(), lo if lo > 0 else 1e-6), hi)
        for _ in range(abs(steps)):
            e = math.floor(math.log10(v) + 1e-9)
            m = v / 10**e
            ladder = (1, 2, 5, 10)
            if steps > 0:
                m = next((x for x in ladder if x > m + 1e-9), 10)
            else:
                m = next((x for x in reversed((0.5, 1, 2, 5)) if x < m - 1e-9), 0.5)
            v = m * 10**e
        self.setValue(min(max(v, lo if lo > 0 else 1e-6), hi))
