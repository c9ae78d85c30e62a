"""ELBO Studio window: PySide6 + pyqtgraph. Draws numpy arrays the engine emits; does no model math."""
