"""``python -m lava_worker``: serve femsnn's requests over stdin/stdout (see :mod:`.server`)."""

from .server import main

main()
