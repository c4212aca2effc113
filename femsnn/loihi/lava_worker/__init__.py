"""The Lava side of femsnn's Loihi offload: code run by the Python 3.10 worker interpreter.

The main femsnn process (Python 3.12, torch, dolfinx) never imports Lava. It starts
``python -m lava_worker`` in the worker environment (see :mod:`femsnn.loihi.env`) with this
directory's parent on ``PYTHONPATH`` and talks to it over pipes (:mod:`.protocol`).

Modules that need only numpy (``protocol``, ``network``, ``dynamics``, ``quantise``,
``reference``) are also imported by the main process, with numpy 1 or 2; ``graph``, ``server``
and the ``processes`` subpackage import Lava and run only in the worker.
"""
