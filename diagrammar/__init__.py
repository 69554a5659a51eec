"""diagrammar: string diagrams for language-model decoders, compiled by functors."""
