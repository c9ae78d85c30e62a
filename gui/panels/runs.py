"""The "Runs" page: the runs of this window and checkpoints loaded beside them, their curves overlaid.

The list holds the current model (its curves are the state's history, live) and, below it, every earlier model
of this window that finished an epoch (kept when another model replaces it) and every checkpoint added with
"Add checkpoint…". A record holds settings and curves only (engine/runs.py): no weights, so nothing is kept twice,
and "Remove" frees it. Ticked runs are overlaid: the test ELBO and the test KL per epoch, and the rate–distortion
plane (each epoch's KL against its −E_q[log p(x|z)]), with a legend naming the settings in which they differ."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from engine.runs import RunRecord, differing_settings, rate_distortion
from gui import style

NATS = "nats per example"


class RunsPanel(QWidget):
    add_asked = Signal()  # "Add checkpoint…": the window asks which file

    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.state = state
        self.current: RunRecord | None = None  # the window's model now; its history is the state's, growing
        self.records: list[RunRecord] = []  # earlier runs of this window and added checkpoints
        self.ticked: set[int] = set()  # id() of the ticked records (the current run is ticked unless unticked)
        self._current_ticked = True
        self._runs = 0  # runs of this window so far (their names)
        self.items: dict[int, tuple] = {}  # id(record) -> its plot items (ELBO, KL, rate–distortion)

        self.list = QListWidget()
        self.list.setObjectName("runList")
        self.list.setToolTip("Tick runs to overlay their curves")
        self.list.itemChanged.connect(self._on_item_changed)
        self.add_button = QPushButton("Add checkpoint…")
        self.add_button.setObjectName("runAdd")
        self.add_button.setToolTip("Add a checkpoint's curves to the list (its weights are not kept)")
        self.add_button.clicked.connect(self.add_asked)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("runRemove")
        self.remove_button.setToolTip("Remove the selected run from the list (frees it)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.message = QLabel("")
        self.message.setObjectName("runsMessage")
        self.message.setProperty("role", "warning")
        self.message.setWordWrap(True)
        self.message.hide()
        side = QVBoxLayout()
        side.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        side.addLayout(buttons)
        side.addWidget(self.message)

        self.elbo_plot = style.make_plot("Test ELBO ↑", "epoch", NATS, "runsElboPlot")
        self.kl_plot = style.make_plot("Test KL", "epoch", NATS, "runsKlPlot")
        self.rd_plot = style.make_plot("Rate–distortion", "rate: KL (nats)", "distortion: −E_q[log p(x|z)]", "rdPlot")
        self.rd_plot.setToolTip(
            "Each epoch's (KL, −reconstruction) on the test set: runs with different β sit on one plane "
            "(a larger β buys a lower rate with more distortion)"
        )
        self.legend = QLabel("")
        self.legend.setObjectName("runsLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        plots = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(self.elbo_plot)
        row.addWidget(self.kl_plot)
        plots.addLayout(row, 1)
        plots.addWidget(self.rd_plot, 1)
        plots.addWidget(self.legend)
        lay = QHBoxLayout(self)
        lay.addLayout(side, 1)
        lay.addLayout(plots, 3)
        state.history_grew.connect(self._on_history_grew)
        self._epochs_drawn = -1

    # -- the list ---------------------------------------------------------------------------------------------
    def on_new_model(self, train_config) -> None:
        """Another model became current (its settings: the state's model config and ``train_config``): the one
        it replaces stays in the list when it finished an epoch."""
        if self.current is not None and self.current.history.epochs:
            self._add(self.current, ticked=self._current_ticked)
        cfg = self.state.model_config
        if cfg is None:
            self.current = None
        else:
            ck = self.state.checkpoint
            if ck is not None:
                name = ck.path.rsplit("/", 1)[-1]
            else:
                self._runs += 1
                name = f"run {self._runs}"
            self.current = RunRecord(name, cfg, train_config, self.state.history)
        self._current_ticked = True
        self.redraw()

    def add_record(self, record: RunRecord) -> None:
        """A checkpoint's record (engine.runs.record_of_checkpoint), ticked."""
        self.message.hide()
        self._add(record, ticked=True)
        self.redraw()

    def show_error(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()

    def _add(self, record: RunRecord, ticked: bool) -> None:
        self.records.append(record)
        if ticked:
            self.ticked.add(id(record))

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        offset = 1 if self.current is not None else 0
        if row < offset or row - offset >= len(self.records):
            return  # the current model is not removed here
        record = self.records.pop(row - offset)
        self.ticked.discard(id(record))
        self._drop_items(id(record))
        self.redraw()

    def shown_runs(self) -> list[RunRecord]:
        """The ticked runs, current first."""
        runs = [self.current] if self.current is not None and self._current_ticked else []
        return runs + [r for r in self.records if id(r) in self.ticked]

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        record = item.data(Qt.ItemDataRole.UserRole)
        on = item.checkState() == Qt.CheckState.Checked
        if record is self.current:
            self._current_ticked = on
        elif on:
            self.ticked.add(id(record))
        else:
            self.ticked.discard(id(record))
        self._draw_plots()

    def _on_history_grew(self) -> None:
        if self.current is not None and len(self.current.history.epochs) != self._epochs_drawn:
            self.redraw()  # a new epoch: the current run's entry counts it, its curves grow

    # -- drawing ----------------------------------------------------------------------------------------------
    def redraw(self) -> None:
        row = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        entries = ([self.current] if self.current is not None else []) + self.records
        for r in entries:
            live = " (current)" if r is self.current else ""
            item = QListWidgetItem(
                f"{r.name}{live} · {len(r.history.epochs)} epoch{'s' * (len(r.history.epochs) != 1)}"
            )
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = self._current_ticked if r is self.current else id(r) in self.ticked
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, r)
            self.list.addItem(item)
        if 0 <= row < self.list.count():
            self.list.setCurrentRow(row)
        self.list.blockSignals(False)
        self._draw_plots()

    def _drop_items(self, key: int) -> None:
        for item, plot in zip(self.items.pop(key, ()), (self.elbo_plot, self.kl_plot, self.rd_plot)):
            plot.getPlotItem().removeItem(item)

    def _draw_plots(self) -> None:
        runs = self.shown_runs()
        self._epochs_drawn = len(self.current.history.epochs) if self.current is not None else -1
        keep = {id(r) for r in runs}
        for key in [k for k in self.items if k not in keep]:
            self._drop_items(key)
        labels = differing_settings(runs)
        legend = []
        for i, (r, diff) in enumerate(zip(runs, labels)):
            color = style.CLASS_COLORS[i % len(style.CLASS_COLORS)]
            if id(r) not in self.items:
                self.items[id(r)] = tuple(
                    plot.plot(pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6, symbolBrush=color)
                    for plot in (self.elbo_plot, self.kl_plot, self.rd_plot)
                )
            elbo_item, kl_item, rd_item = self.items[id(r)]
            for item in (elbo_item, kl_item, rd_item):
                item.setPen(pg.mkPen(color, width=2))
                item.setSymbolBrush(color)
            ep = r.history.epochs
            x = np.arange(1, len(ep) + 1, dtype=np.float64)
            elbo_item.setData(x, np.array([e.test_elbo for e in ep], np.float64))
            kl_item.setData(x, np.array([e.test_kl for e in ep], np.float64))
            rd_item.setData(*rate_distortion(r.history))
            legend.append(f"<span style='color:{color}'>━</span> {r.name}" + (f" ({diff})" if diff else ""))
        self.legend.setText(" &nbsp; ".join(legend) if legend else "Tick runs in the list to overlay their curves.")
