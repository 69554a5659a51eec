"""diagrammar.functors"""
