"""Datasets and the training harness for regressor networks (spiking or LSTM) of stress paths.

Modules (import them directly; this package imports nothing eagerly, so that materials may use
the artefact loader without import cycles):

* :mod:`femsnn.train.data` — generators (``generate(settings)``) for the paper's elasticity,
  Ramberg-Osgood and isotropic-hardening benchmarks and random J2 strain walks; the ``Dataset``
  ``.npz`` format; ``strain_inputs`` / ``strain_step_inputs`` (strain and optional increments).
* :mod:`femsnn.train.normalisation` — ``Normalisation`` (per-component or scalar standardisation).
* :mod:`femsnn.train.metrics` — ``stress_metrics``: the authors' code metric, eq. 14, errors in MPa.
* :mod:`femsnn.train.harness` — ``TrainingSettings``, ``train`` (resumable), ``predict``.
* :mod:`femsnn.train.artifact` — one model file: ``save_model``, ``load_model`` -> (net, ``Artifact``).
* :mod:`femsnn.train.config` / :mod:`femsnn.train.workflow` — the ``femsnn train`` and
  ``femsnn evaluate`` commands (TOML schema, outputs, plots in :mod:`femsnn.train.plots`).
"""
