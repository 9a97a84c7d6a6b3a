"""Face data for frontalization: the SynthPIE renderer and loaders for Multi-PIE, CAS-PEAL-R1 and plain folders."""
