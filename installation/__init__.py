"""Runtime for gallery installations that morph between portraits of imaginary people.

This package runs on the exhibition PC and never imports torch: the workshop side that
needs torch lives in the separate ``export`` package.
"""

import os

# pygame prints a greeting on import; in the journal of a kiosk that is noise.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# Recent ONNX Runtimes keep a telemetry device ID under $HOME/.cache, read on import; with a
# service's unwritable HOME they warn "Failed to persist telemetry device ID" at every start.
# A kiosk sends no telemetry: this stops the ID, its file and the warning.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
