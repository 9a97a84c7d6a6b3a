"""Generators, discriminators and the identity network, each reading like its paper's layer table."""
