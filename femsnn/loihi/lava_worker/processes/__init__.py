"""Lava Processes and ProcessModels of femsnn's neurons; nothing else may live here.

Lava's compiler imports every module in the folder of a custom Process (as a bare top-level
module) while it searches for ProcessModels, so this subpackage holds only side-effect-free
modules with absolute imports.
"""
