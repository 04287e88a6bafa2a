"""What runs on the PYNQ board (numpy only): accelerator I/O and packing, the decision rule."""
