"""The "VI explorer" tab: variational inference on the Exponential–Normal model (seed 001), every number exact.

Left: the controls (gui/explorer_controls.py): the model (α, σ, D), the surrogate family and its parameters, the
Monte Carlo sample count, and the fit with its gradient estimator. Right, on a first page: densities over z; the numbers (log p(D) both ways, ELBO exact and by
Monte Carlo, KL, and the identity log p(D) = ELBO + KL holding live, gui/explorer_numbers.py); the ELBO over the
family's parameters; the ELBO against fit steps (gui/explorer_plots.py). On a second page, the gradient
estimators' lab (gui/gradient_lab.py).

This panel owns the explorer's state (the model, the family, q, the family's best, the last fit) and draws it. No
model math here: everything comes from ``engine.explorer``. The fit is the engine's generator, run on a
``gui.workers.Worker`` in about 70 batches of steps whatever their number; the panel draws one batch per tick of
a timer (30 ms), so the fit animates in about two seconds."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QSizePolicy, QTabWidget, QVBoxLayout, QWidget

from engine import explorer as ex
from gui.explorer_controls import ExplorerControls
from gui.explorer_numbers import ExplorerNumbersBox
from gui.explorer_plots import ExplorerPlots, FitTrace
from gui.gradient_lab import GradientLab
from gui.workers import Worker

TICK_MS = 30  # fit animation: one batch of steps drawn every 30 ms ...
TICKS_PER_FIT = 70  # ... and about this many batches per fit (≈ 2–3 s), whatever the number of steps
FIT_WAIT_MS = 3000  # the most ``stop_fit`` waits for the fit's thread when asked to


def _batched(steps, per_tick: int):
    """The fit's steps in lists of ``per_tick`` (on the worker thread)."""
    batch = []
    for record in steps:
        batch.append(record)
        if len(batch) == per_tick:
            yield batch
            batch = []
    if batch:
        yield batch


class ExplorerPanel(QWidget):
    """Self-contained "VI explorer" tab. ``stop_fit()`` stops a running fit (the main window calls it on close)."""

    fit_finished = Signal()  # a fit ran to its last step or was stopped

    def __init__(self, parent: QWidget | None = None, model: ex.ExpNormalModel | None = None):
        super().__init__(parent)
        self.setObjectName("explorer_panel")
        self._model = model or ex.ExpNormalModel(alpha=1.0, sigma=1.0, D=2.0)
        self._family: type[ex.Surrogate] = ex.ExponentialQ
        self._q: ex.Surrogate = self._family.starting_point(self._model)
        self._best: ex.Surrogate | None = None
        self._surface: ex.ElboSurface | None = None
        self._numbers: ex.ExplorerNumbers | None = None
        self._mc_seed = 0
        self._trace = FitTrace()
        self._fit: Worker | None = None
        self._fit_pending: deque[list] = deque()  # batches of fit steps computed and not drawn yet
        self._fit_computed = False  # the fit's worker has delivered its last batch
        self._fit_timer = QTimer(self)
        self._fit_timer.setObjectName("explorer_fit_timer")
        self._fit_timer.setInterval(TICK_MS)
        self._fit_timer.timeout.connect(self._draw_next_batch)
        self._fit_total = 0
        self._fit_estimator = "pathwise"  # the last fit's estimator, as its report names it

        self.controls = ExplorerControls(self._model)
        self.plots = ExplorerPlots()
        self.numbers_box = ExplorerNumbersBox()
        self.gradient_lab = GradientLab()
        self._layout()
        c = self.controls
        c.model_changed.connect(self._on_model_changed)
        c.family_changed.connect(self._on_family_changed)
        c.param_changed.connect(self._on_param_changed)
        c.samples_changed.connect(self._refresh)
        c.resample_clicked.connect(self._on_resample)
        c.fit_clicked.connect(self._on_fit)
        c.stop_clicked.connect(lambda: self.stop_fit("stopped"))
        c.best_clicked.connect(self._on_best)
        self._on_model_changed()  # first full computation and draw

    def _layout(self) -> None:
        p = self.plots
        bottom = QHBoxLayout()
        bottom.addWidget(p.surface_stack, 1)
        bottom.addWidget(p.step_plot, 1)
        right = QVBoxLayout()
        right.addWidget(p.density_plot, 5)
        right.addWidget(self.numbers_box, 0)
        right.addLayout(bottom, 4)
        self.right_tabs = QTabWidget()
        self.right_tabs.setObjectName("explorer_right_tabs")
        self.right_tabs.addTab(QWidget(), "Densities && fit")
        self.right_tabs.widget(0).setLayout(right)
        self.right_tabs.addTab(self.gradient_lab, "Gradient estimators")
        outer = QHBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(self.controls)
        outer.addWidget(self.right_tabs, 1)
        self.numbers_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    # ------------------------------------------------------------------------------------------------ public
    @property
    def model(self) -> ex.ExpNormalModel:
        return self._model

    @property
    def family(self) -> type[ex.Surrogate]:
        return self._family

    @property
    def q(self) -> ex.Surrogate:
        return self._q

    @property
    def numbers(self) -> ex.ExplorerNumbers | None:
        return self._numbers

    @property
    def surface(self) -> ex.ElboSurface | None:
        return self._surface

    @property
    def best(self) -> ex.Surrogate | None:
        return self._best

    @property
    def best_elbo(self) -> float:
        return self._surface.best_elbo if self._surface is not None else math.nan

    def is_fitting(self) -> bool:
        return self._fit is not None

    def fit_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, MC ELBO estimates) of the current/last fit, as drawn."""
        return np.asarray(self._trace.steps, dtype=float), np.asarray(self._trace.mc, dtype=float)

    def stop_fit(self, reason: str = "stopped", wait_ms: int = 0) -> None:
        """Stop a running fit (no-op if none) and report where it got to; nothing of it arrives after this.
        ``wait_ms``: also wait that long for its thread to end (closing the window)."""
        fit, self._fit = self._fit, None
        if fit is None:
            return
        fit.cancel()  # nothing more of it arrives; its thread ends after its current batch
        self._fit_timer.stop()
        self._fit_pending.clear()
        if wait_ms:
            fit.wait(wait_ms)
        self.controls.set_fitting(False)
        self._report_fit(reason)
        self.fit_finished.emit()

    # ---------------------------------------------------------------------------------------------- handlers
    def _on_model_changed(self) -> None:
        self.stop_fit("stopped: the model changed")
        self._model = self.controls.model()
        self._new_landscape()

    def _on_family_changed(self) -> None:
        self.stop_fit("stopped: the family changed")
        self._family = self.controls.family()
        self._q = self._family.starting_point(self._model)
        self._new_landscape()
        # the last fit's report was about the previous family
        self.controls.set_report(f"Press Fit to run stochastic VI from this {self._family.display_name} q.")

    def _on_param_changed(self, index: int, value: float) -> None:
        self.stop_fit("stopped: parameters moved by hand")
        params = self._q.params()
        params[self._family.param_names[index]] = value
        self._q = self._family(**params)
        self._refresh()

    def _on_resample(self) -> None:
        self._mc_seed += 1
        self._refresh()

    def _on_best(self) -> None:
        self.stop_fit("stopped: jumped to the best q")
        if self._best is not None:
            self._q = self._best
            self._refresh()

    def _on_fit(self) -> None:
        if self._fit is not None:
            return
        settings = self.controls.fit_settings()
        self._fit_total = steps = settings["steps"]
        per_tick = max(1, math.ceil(steps / TICKS_PER_FIT))
        run = ex.fit(self._model, self._family, self._q, seed=self._mc_seed, **settings)
        self._trace = FitTrace(exact_steps=[0], exact=[self._numbers.elbo_quad], path=[self._q.params()])
        self._draw_fit()
        self.controls.set_fitting(True)
        name = ex.ESTIMATORS[settings["estimator"]]
        self._fit_estimator = name[0].lower() + name[1:]
        self.controls.set_report(f"Fitting {self._family.display_name} q: {steps} steps, {self._fit_estimator} …")
        self._fit_computed = False
        fit = Worker(lambda: _batched(run, per_tick), on_item=self._fit_pending.append, parent=self, name="explorerFit")
        fit.done.connect(lambda: self._on_fit_computed(fit))
        self._fit = fit
        self._fit_timer.start()

    def _draw_next_batch(self) -> None:
        if self._fit_pending:
            self._show_fit_steps(self._fit_pending.popleft())
        elif self._fit_computed:
            self.stop_fit("finished")

    def _on_fit_computed(self, fit: Worker) -> None:
        if fit is self._fit:  # ran to its last step; the timer draws what is left (a stopped fit has reported)
            self._fit_computed = True

    def _show_fit_steps(self, records) -> None:
        t = self._trace
        for record in records:
            t.steps.append(record.step)
            t.mc.append(record.elbo_estimate)
        last = records[-1]
        self._q = self._family(**last.params)
        t.path.append(dict(last.params))
        self._refresh(fit_step=last.step)

    def closeEvent(self, event):  # noqa: N802 - Qt name
        self.stop_fit("stopped: panel closed", FIT_WAIT_MS)
        self.gradient_lab.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------------------------------------- computation
    def _new_landscape(self) -> None:
        """Model or family changed: the family's controls, its optimum and ELBO surface; the last fit is gone."""
        self.controls.show_family(self._family, self._model, self._q)
        self._best = ex.best_params(self._model, self._family)
        self._surface = ex.elbo_surface(self._model, self._family, best=self._best)
        self.plots.draw_landscape(self._surface, self._family.param_labels)
        self._trace = FitTrace()
        self._refresh()

    def _refresh(self, fit_step: int | None = None) -> None:
        """q changed (or N, or the seed): curves, numbers, markers, fit curves."""
        self.controls.show_q(self._q)
        self._numbers = n = ex.explorer_summary(self._model, self._q, self.controls.samples(), self._mc_seed)
        self.gradient_lab.set_problem(self._model, self._q)
        self.plots.draw_densities(ex.density_curves(self._model, self._q), self._model.D)
        self.numbers_box.show_numbers(n)
        if fit_step is not None:
            self._trace.exact_steps.append(fit_step)
            self._trace.exact.append(n.elbo_quad)
        self.plots.draw_q(self._q, n.elbo_quad, self._trace.path, self._trace.exact)
        self._draw_fit()

    def _draw_fit(self) -> None:
        log_p = self._numbers.log_marginal_closed if self._numbers else 0.0
        total = self._fit_total or self.controls.fit_settings()["steps"]
        self.plots.draw_fit(self._trace, log_p, self.best_elbo, total)

    def _report_fit(self, reason: str) -> None:
        n = self._numbers
        if n is None:
            return
        gap = n.log_marginal_closed - n.elbo_quad
        best_gap = max(n.log_marginal_closed - self.best_elbo, 0.0)  # ≥ 0 up to rounding (~1e-15)
        steps = self._trace.steps[-1] if self._trace.steps else 0
        self.controls.set_report(
            f"Fit {reason} after {steps} steps with the {self._fit_estimator} gradient: final ELBO {n.elbo_quad:.4f}, "
            f"gap to log p(D) {gap:.4f} nats; "
            f"family best {self.best_elbo:.4f} (gap {best_gap:.4f}); "
            f"fit − best = {n.elbo_quad - self.best_elbo:+.4f} nats."
        )
