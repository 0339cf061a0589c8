"""Torch-free code shared by training and the service: image preprocessing and the manifest."""
