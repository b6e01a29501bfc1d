"""``python -m pdclient``: the same as the ``pd-analyse`` command."""
import sys

from .cli import main

sys.exit(main())
