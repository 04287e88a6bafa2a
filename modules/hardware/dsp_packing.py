"""How finn-rtllib's MVU core (mvu.sv) packs multiplications into DSP slices: structural, so
counted rather than fitted (the resource model and the block models both use it)."""


def dsp_a_width(part):
    """Width of the DSP's A/pre-adder datapath, as mvu.sv sets it (25 on DSP48E1)."""
    from finn.util.basic import get_dsp_block

    return {"DSP48E1": 25, "DSP48E2": 27}.get(get_dsp_block(part))


def mvu_lanes(weight_bits, act_bits, narrow_weights, a_width):
    """PEs packed into one DSP by finn-rtllib/mvu/mvu.sv (NUM_LANES)."""
    if a_width == weight_bits:
        return 1
    lane = weight_bits + act_bits - 1
    return max(1, 1 + (a_width - (not narrow_weights) - weight_bits) // lane)


def mvu_dsp_slices(pe, simd, lanes):
    """DSP slices finn-rtllib/mvu/mvu.sv instantiates: PIPE_COUNT = 1 + (PE-1)/NUM_LANES
    pipes (genPipes), each with one DSP primitive per SIMD element (genSIMD)."""
    return (1 + (pe - 1) // lanes) * simd
