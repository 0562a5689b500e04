import sys
from pathlib import Path

# agentlab.py (the process harness) sits beside this file; the package under test in ../src.
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).resolve().parents[1] / "src")]
