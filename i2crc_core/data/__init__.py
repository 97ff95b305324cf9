"""Datasets: the VOC layout and manifests, VOC/SBD building, the synthetic benchmark, saliency
maps, torch datasets and loaders, downloads and archives, data fingerprints."""
