"""diagrammar.diagrams"""
