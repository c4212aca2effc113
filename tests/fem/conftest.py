"""FE tests: dolfinx_solver must be imported before dolfinx, also by test modules that import dolfinx first."""

import dolfinx_solver  # noqa: F401
