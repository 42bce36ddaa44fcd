"""What every part of colorize shares, with numpy and the standard library only: colour maths
for inference, and (moving here) files, model files, image decoding, metrics and errors.
Nothing here imports torch or any other colorize package."""
