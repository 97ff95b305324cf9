"""What the paper defines, over arrays and tensors: the losses (Eq. 1, 3-8), the pseudo-label
rule, refinement (Eq. 9-11), the dense CRF, the metrics of its tables."""
