"""What the hardware will be: FINN estimates, budget and fit-to-part search, the bit-exact
emulator.
"""
