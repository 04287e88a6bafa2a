"""Open-source synthesis of a compiled design's RTL layers (finn-plus codegen + Yosys)."""
