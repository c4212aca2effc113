"""The dolfinx side of femsnn: quasi-static small-strain mechanics with any femsnn material.

``dolfinx_solver`` is imported first, as dolfinx-solver-real requires before dolfinx or petsc4py.
"""

import dolfinx_solver  # noqa: F401
