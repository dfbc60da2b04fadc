"""What a model is and where it lives: checkpoints and tokenizers, the home's versions, the int8
ONNX graph, imports and adapters. Imports only runtime (the importer alone also loads and measures
what it imports: inference, evaluation, learning's parity check)."""
