"""The compression stages of GAN Compression, in the order they run.

    distillation  teacher -> narrower student (scratch / output / 1x1-feature modes, inherited D)
    sensitivity   which layer groups tolerate separable convolutions (informs the student design space)
    supernet      the once-for-all student: student design space, uniform sampling, eq. 5 training
    search        exhaustive / random / evolutionary search under a MACs budget, Pareto front
    finetune      extract the chosen sub-network and fine-tune it with the same objective
    export        plain checkpoint + manifest, TorchScript, ONNX (checked with onnxruntime)
    pipeline      `gancomp-lite compress`: all of the above, resumable, with a report
"""
