"""Put the project's ``handler/`` folder (the served modules) and its root (the ``training``
package) on the import path of a script run from anywhere."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "handler"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def command_line(doc: str | None):
    """The arguments of a script that takes none: ``--help`` prints its docstring and exits
    before anything starts (a server, a long measurement, a write to docs/)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser.parse_args()
