"""diagrammar.symbolic"""
