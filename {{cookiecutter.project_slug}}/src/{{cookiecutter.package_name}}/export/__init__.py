"""What export writes besides the skops file: the ONNX graph and the model card."""
