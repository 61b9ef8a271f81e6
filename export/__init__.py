"""Workshop side: torch stage architectures, checkpoint importers, ONNX export and checks.

Its output is a model bundle (see ``installation.engine.bundle``), the one contract with the
runtime.
"""
