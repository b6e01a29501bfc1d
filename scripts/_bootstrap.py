"""Put the project's ``handler/`` folder on the import path of a script run from anywhere."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "handler") not in sys.path:
    sys.path.insert(0, str(ROOT / "handler"))
