"""Networks: the models, CAM extraction (Eq. 2), training, inference, checkpoints and model
files, devices and precision, seeded sampling, ImageNet weights."""
