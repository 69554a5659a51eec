"""diagrammar.decoding"""
