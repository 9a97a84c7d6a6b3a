"""Generator families, discriminators and the identity network.

One way to build any of them: ``gancomp_lite.models.registry.build(arch, config, size)``.
"""
