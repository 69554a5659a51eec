"""diagrammar.models"""
