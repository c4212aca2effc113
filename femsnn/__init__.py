"""femsnn: finite-element plugin for dolfinx with reference and spiking-LSTM materials."""

__version__ = "0.1.0"
