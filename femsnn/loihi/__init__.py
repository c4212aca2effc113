"""Loihi offload through Lava: export a trained spiking regressor, run it in a separate Lava worker.

* :mod:`femsnn.loihi.export` — ``export_regressor(net, path, normalisation)``: torch -> portable ``.npz``;
* :mod:`femsnn.loihi.worker` — ``LavaWorker(path, backend)``: the Lava process graph in a Python 3.10
  worker (backends ``sim-float``, ``sim-fixed``, ``hw``, ``auto``), with a watchdog;
* :mod:`femsnn.loihi.offload` — ``femsnn offload MODEL DATA``: a dataset split through Lava vs torch;
* :mod:`femsnn.loihi.qat` — ``femsnn qat MODEL DATA``: quantisation-aware fine-tuning for Loihi fixed point;
* :mod:`femsnn.loihi.energy` — ``femsnn energy MODEL DATA``: energy on Loihi, GPU and CPU from counted spikes;
* :mod:`femsnn.loihi.backend` — ``LavaSpikingMaterial``: the spiking material with its network run by Lava
  (one step of all quadrature points from their committed states per call);
* :mod:`femsnn.loihi.env` — where the worker interpreter lives (``make lava-venv``);
* :mod:`femsnn.loihi.lava_worker` — the code the worker runs (Lava processes, numpy references).

Nothing here imports Lava in the main process.
"""
