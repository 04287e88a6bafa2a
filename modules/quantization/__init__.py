"""QONNX export of the Brevitas model and stage-vs-stage equivalence tables on real images."""
