"""The training step and the evaluation pass compiled with ``torch.compile`` (Inductor), beside the eager ones.

What is compiled: the loss of a batch (encoder, reparameterisation, decoder, likelihood, KL, β and free bits,
autocast inside) and, through AOTAutograd, its backward; the optimizer stays torch's fused Adam. For evaluation,
the test-ELBO pass of one chunk. Both are the same ``elbo_terms`` the eager code runs (one copy of the math),
run through ``torch.func.functional_call`` so the weights are *inputs* of the compiled graph: a graph compiled
on a copy of the model serves the live model, and every later model of the same configuration.

Never blocking: compiling takes tens of seconds on two cores, so it happens on a background thread, on a copy
of the model and a dummy batch, while the trainer keeps stepping eagerly. The trainer asks for the compiled
step before each step and gets it only once a graph for exactly that case is ready; otherwise (not ready yet,
the last short batch of an epoch, a chunk of another size) it steps eagerly. So the switch loses no step, and
the noise, batch order and optimizer are the same on both paths.

Shapes and thread counts: graphs are compiled with static shapes for the full batch (``dynamic=False``); the one
short batch per epoch runs eagerly rather than recompiling or padding. Dynamo also guards on the calling
thread's ``torch.get_num_threads()`` (Inductor's C++ kernels bake their OpenMP team size in), so a graph is
compiled per thread count the governor (engine/threads.py) may choose, the count in use first. A count without
a graph runs eagerly, so the governor keeps choosing freely and the training thread never compiles.

Cache: the graphs live in a process-wide registry keyed by everything they depend on (model configuration,
batch rows, precision, device, free bits), so a second run of the same shape in the same process starts
compiled; Inductor's on-disk cache (``TORCHINDUCTOR_CACHE_DIR``, by default under the system's temp folder)
makes the next process's compile a fraction of the first's.

Fallback: when compiling raises (no C++ compiler, an unsupported op, a backend error), the reason is kept as
one line, reported once, and training goes on eagerly."""

from __future__ import annotations

import atexit
import copy
import os
import threading
import time
import types
from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .objectives import elbo_terms

BACKEND = "inductor"  # the torch.compile backend (tests may hold it back or make it fail)
ENV = "ELBO_STUDIO_COMPILE"  # "off" turns Compile: auto into off for this process (the test suite sets it)


@dataclass(frozen=True)
class CompileKey:
    """Everything a compiled graph depends on besides the weights' values."""

    model: ModelConfig
    rows: int  # batch rows of the training step
    eval_rows: int  # rows of an evaluation chunk (0: evaluation not compiled)
    amp: str  # "" for fp32, else the autocast dtype's name
    device: str
    free_bits: float


class _Loss(nn.Module):
    """The training loss of a batch, as a module so that functional_call swaps every weight (the likelihood's
    too) for the ones given."""

    def __init__(self, vae: nn.Module, device_type: str, amp: torch.dtype | None, free_bits: float):
        super().__init__()
        self.vae, self.device_type, self.amp, self.free_bits = vae, device_type, amp, free_bits

    def forward(self, x, eps, beta, y):
        with torch.autocast(self.device_type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            t = elbo_terms(self.vae, x, beta, self.free_bits, eps, y)
        return t.loss, torch.stack((t.elbo.mean(), t.recon.mean(), t.kl.mean())).detach()


class _EvalChunk(nn.Module):
    """One chunk of the test-ELBO pass: (Σ elbo, Σ recon, Σ kl), Σ KL per dimension, μ and log σ²."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, x, eps, y):
        t = elbo_terms(self.vae, x, 1.0, 0.0, eps, y)
        return torch.stack((t.elbo.sum(), t.recon.sum(), t.kl.sum())), t.kl_dims.sum(0), t.mu, t.log_var


class _Graphs:
    """The compiled functions of one CompileKey and which (kind, thread count) cases are ready."""

    def __init__(self, key: CompileKey, vae: nn.Module, device: torch.device, amp: torch.dtype | None):
        template = copy.deepcopy(vae)
        self.loss = _Loss(template, device.type, amp, key.free_bits).train()
        self.eval_chunk = _EvalChunk(copy.deepcopy(template)).eval()
        self.loss_fn = torch.compile(_own_code(self._call_loss), backend=BACKEND, dynamic=False, fullgraph=True)
        self.eval_fn = torch.compile(_own_code(self._call_eval), backend=BACKEND, dynamic=False, fullgraph=True)
        self.ready: set[tuple[str, int]] = set()
        self.error = ""  # why compiling failed, one line ("" while it has not)
        self.seconds: dict[tuple[str, int], float] = {}  # compile time of each case
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.cancel = threading.Event()  # set at exit: leave after the case being compiled

    def _call_loss(self, params, x, eps, beta, y):
        return torch.func.functional_call(self.loss, params, (x, eps, beta, y))

    def _call_eval(self, params, x, eps, y):
        return torch.func.functional_call(self.eval_chunk, params, (x, eps, y))


def _own_code(method):
    """``method`` with a code object of its own. Dynamo keeps the graphs it compiled for a function on its code
    object, at most ``recompile_limit`` (8) of them, and past that refuses (with ``fullgraph=True``); all _Graphs
    shared the one ``_call_loss`` code, so the fifth configuration of a session (two thread counts each) trained
    eagerly, "compiling failed (FailOnRecompileLimitHit…)". One code object per CompileKey holds its own thread
    counts' graphs only (at most MAX_THREAD_VARIANTS)."""
    f = method.__func__
    own = types.FunctionType(f.__code__.replace(), f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    return types.MethodType(own, method.__self__)


_REGISTRY: dict[CompileKey, _Graphs] = {}
_REGISTRY_LOCK = threading.Lock()


@atexit.register
def _finish_compiling() -> None:
    """At exit, a compile thread finishes the case it is in and stops: killed inside Inductor, it aborts the
    process ("terminate called without an active exception")."""
    with _REGISTRY_LOCK:
        graphs = list(_REGISTRY.values())
    for g in graphs:
        g.cancel.set()
    for g in graphs:
        if g.thread is not None:
            g.thread.join()


def _params(model: nn.Module, prefix: str = "vae.") -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in model.named_parameters()}


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {text[:200]}"


class CompiledStep:
    """The compiled training step and evaluation chunk of one run, compiled in the background.

    ``loss(...)`` / ``eval_chunk(...)`` return the compiled result, or None when the caller must run the eager
    code (not ready, another shape or thread count, or compiling failed). ``news()`` returns a one-line status
    when it changed since the last call (for the run's messages), else None."""

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        amp: torch.dtype | None,
        rows: int,
        eval_rows: int,
        free_bits: float,
        thread_counts: list[int],
        conditional_classes: int = 0,
    ):
        self.model, self.device, self.rows, self.eval_rows = model, device, rows, eval_rows
        self.classes = conditional_classes
        self.key = CompileKey(model.cfg, rows, eval_rows, "" if amp is None else str(amp), str(device), free_bits)
        with _REGISTRY_LOCK:
            graphs = _REGISTRY.get(self.key)
            if graphs is None or graphs.error:
                graphs = _REGISTRY[self.key] = _Graphs(self.key, model, device, amp)
        self.graphs = graphs
        self.counts = list(dict.fromkeys(thread_counts))  # the count in use first
        self.switched_at: int | None = None  # the first step the compiled graph ran
        self._told_state: tuple[str, int | None] = ("", None)
        with graphs.lock:
            pending = [c for c in self.counts if not {("train", c), ("eval", c)} <= graphs.ready]
            busy = graphs.thread is not None and graphs.thread.is_alive()
            if pending and not busy and not graphs.cancel.is_set():
                graphs.thread = threading.Thread(
                    target=self._compile_all, name="compileStep", args=(graphs, self.counts), daemon=True
                )
                graphs.thread.start()

    # -- background --------------------------------------------------------------------------------------
    def _compile_all(self, graphs: _Graphs, counts: list[int]) -> None:
        """Compile each case on a copy of the weights and a dummy batch; the training thread is never touched."""
        from .threads import default_threads

        default_threads()  # read torch's own count before this thread changes its count
        params = {k: nn.Parameter(v.detach().clone()) for k, v in _params(self.model).items()}
        d, shape = self.model.cfg.latent_dim, self.model.cfg.image_shape
        y = self._dummy_labels(self.rows)
        cases = [("train", c) for c in counts] + ([("eval", c) for c in counts] if self.eval_rows else [])
        try:
            for kind, count in cases:
                if graphs.cancel.is_set():
                    return
                if (kind, count) in graphs.ready:
                    continue
                torch.set_num_threads(count)  # dynamo guards on it: compile under the count the trainer will use
                t0 = time.perf_counter()
                if kind == "train":
                    x = torch.zeros((self.rows, *shape), device=self.device)
                    eps = torch.zeros((self.rows, d), device=self.device)
                    loss, _ = graphs.loss_fn(params, x, eps, torch.tensor(1.0, device=self.device), y)
                    loss.backward()  # compiles the backward graph too
                else:
                    x = torch.zeros((self.eval_rows, *shape), device=self.device)
                    eps = torch.zeros((self.eval_rows, d), device=self.device)
                    with torch.no_grad():
                        graphs.eval_fn(_detached(params), x, eps, self._dummy_labels(self.eval_rows))
                with graphs.lock:
                    graphs.seconds[(kind, count)] = time.perf_counter() - t0
                    graphs.ready.add((kind, count))
        except Exception as e:  # noqa: BLE001 - any failure of the compiler means: train eagerly
            with graphs.lock:
                graphs.error = _one_line(e)

    def _dummy_labels(self, rows: int) -> torch.Tensor | None:
        return torch.zeros(rows, dtype=torch.long, device=self.device) if self.classes else None

    # -- the training thread -----------------------------------------------------------------------------
    def _ready(self, kind: str) -> bool:
        g = self.graphs
        return not g.error and (kind, torch.get_num_threads()) in g.ready

    def loss(self, x, eps, beta: float, y, step: int):
        """(loss, (elbo, recon, kl) batch means) from the compiled step, or None: step eagerly."""
        if len(x) != self.rows or not self._ready("train"):
            return None
        if self.switched_at is None:
            self.switched_at = step
        return self.graphs.loss_fn(_params(self.model), x, eps, torch.tensor(float(beta), device=x.device), y)

    def eval_chunk(self, x, eps, y):
        """(sums, kl_dims sum, mu, log_var) of an evaluation chunk from the compiled pass, or None: evaluate eagerly."""
        if len(x) != self.eval_rows or not self._ready("eval"):
            return None
        return self.graphs.eval_fn(_detached(_params(self.model)), x, eps, y)

    def status(self) -> tuple[str, str]:
        """("compiling" | "compiled" | "eager", a line for the status bar / CLI)."""
        g = self.graphs
        with g.lock:
            error, ready, seconds = g.error, set(g.ready), dict(g.seconds)
        if error:
            return "eager", f"compiling failed ({error}); training eagerly"
        if ("train", self.counts[0]) not in ready and self.switched_at is None:
            return "compiling", "eager step; compiling in the background"
        took = seconds.get(("train", self.counts[0]), 0.0)
        since = f" from step {self.switched_at:,}" if self.switched_at is not None else ""
        return "compiled", f"compiled step{since} (compiled in {took:.1f} s)"

    def announce(self) -> tuple[str, str]:
        """The status now, counted as told (the first message of a run)."""
        state, text = self.status()
        self._told_state = state, self.switched_at
        return state, text

    def news(self) -> tuple[str, str] | None:
        """The status when it has changed since it was last told: compiling → compiled (once the first compiled
        step has run), or → eager (compiling failed)."""
        state, text = self.status()
        if state == "compiled" and self.switched_at is None:
            return None  # ready, but not used yet
        if (state, self.switched_at) == self._told_state:
            return None
        self._told_state = state, self.switched_at
        return state, text


def _detached(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in params.items()}


def compile_supported(device: torch.device, distributed: bool) -> str:
    """ "" when the step can be compiled here, else why not (one line)."""
    if distributed:
        return "not compiled under torchrun (DistributedDataParallel steps eagerly)"
    if device.type not in ("cpu", "cuda"):
        return f"torch.compile does not support {device.type} here"
    if device.type == "cpu":
        import shutil

        if not any(shutil.which(c) for c in ("g++", "c++", "clang++", "cc")):
            return "no C++ compiler found (Inductor needs g++ or clang++)"
    return ""


MAX_THREAD_VARIANTS = 4  # graphs per case: the governor's count and its nearest neighbours (others step eagerly)


def thread_counts(governor, current: int) -> list[int]:
    """The thread counts to compile for, the one in use first, then the nearest others the governor may pick."""
    if governor is None or not governor.adaptive:
        return [governor.threads if governor is not None else current]
    others = sorted(range(1, governor.max_threads + 1), key=lambda c: (abs(c - governor.threads), -c))
    return others[:MAX_THREAD_VARIANTS]


def for_run(run) -> tuple[CompiledStep | None, str]:
    """The compiled step of a Trainer (compiling started), or None and why the run steps eagerly."""
    mode = run.cfg.compile
    if mode == "auto" and os.environ.get(ENV, "").strip().lower() == "off":
        mode = "off"
    if mode == "off":
        return None, "compile off: eager step"
    why = compile_supported(run.device, run.dist is not None)
    if why:
        return None, why + "; training eagerly"
    if run.device.type == "cpu" and run.model_cfg.arch == "conv":
        # benchmarks/engine_throughput.py: the compiled conv step ran at 0.85-0.87x the eager one on a 2-core CPU
        return None, "the conv model steps eagerly on the CPU (its compiled step measured slower)"
    step = build_step(run)
    return step, step.status()[1]


def build_step(run) -> CompiledStep:
    """Start compiling ``run``'s step and evaluation chunk in the background, whatever its settings say."""
    from .chunking import rows as chunk_rows

    eval_rows = min(chunk_rows(run.model_cfg, run.device), run.cfg.eval_examples, len(run.x_test))
    return CompiledStep(
        run.model,
        run.device,
        run.amp_dtype,
        min(run.cfg.batch_size, len(run.train_images)),
        eval_rows,
        run.cfg.free_bits,
        thread_counts(run.governor, torch.get_num_threads()),
        run.model_cfg.n_classes,
    )
