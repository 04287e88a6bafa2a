"""The one architecture (architecture.py) and the Brevitas layer kit that quantizes it
(quant_layers.py).
"""
