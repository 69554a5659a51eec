"""diagrammar.kernels"""
