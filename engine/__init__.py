"""ELBO Studio engine: torch + numpy only, never Qt (tests/test_import_contracts.py enforces it).

How data flows through it (the window, gui/, and the CLI, cli.py with its pre-work checks in cli_checks.py,
drive the same functions):

    file/folder ──data/ (registry picks the loader; idx, npz, csv, images, builtin)──▶ Dataset (uint8 N×C×H×W)
        │                                  memory.py: the host's budget, checked from headers before reading
        ▼
    settings: config.py (ModelConfig, TrainConfig) ──preflight.py, run_memory.py──▶ refused before anything is built
        │
        ▼
    trainer.py (Trainer.run(): a generator of messages.py dataclasses, numpy only; evaluation.py: an epoch's test
    figures and the latent snapshot)
        uses  model.py (VAE) · likelihoods.py · objectives.py (ELBO, IWAE) · devices.py · placement.py, batches.py
              (images on the device, a batch → float there) · chunking.py (evaluation pass sizes) · threads.py
              (CPU-thread governor) · compiled.py (torch.compile step) · distributed.py (torchrun ranks;
              launch.py reads the rank from the environment without torch)
        emits MetricsChunk, EpochSummary (+ mutual_information.py), LatentSnapshot, WeightsSnapshot, StateChanged
              (a RunStatus), RunStarted, CheckpointSaved, WorkerError
        │
        ├──▶ history.py (MetricHistory: curves, CSV; runs.py compares finished runs by it) ── checkpoint.py
        │    (save / validated load) ── files.py (atomic writes, quoted names) · outputs.py (never write over an
        │    input or another output)
        └──▶ snapshot.py (SnapshotModel: a CPU copy of a WeightsSnapshot for other threads)
                 used by projection.py (PCA plane of the latent scatter) · posterior.py (2-D true posterior) ·
                 amortization.py (gap study) · inspect/ (traversals, interpolation, images)

    explorer/ (1-D Exponential–Normal VI: bounds, surrogates, gradients, summary) and lab2d/ (2-D point sets,
    mixtures and a VAE on points) stand apart: they take no dataset and no trained model."""
