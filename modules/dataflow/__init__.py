"""QONNX -> FINN dataflow graph: one function per flow step, graph fixes, FINN set-up, stage
checks.
"""
