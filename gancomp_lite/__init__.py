"""gancomp-lite: GAN Compression (Li et al., CVPR 2020) for face-frontalization GANs, in small readable code."""

__version__ = "0.1.0"
