"""Colorization experts: colour maths, U-Net architectures, model files and the model store."""
