"""rltab.policy: the code model, its ONNX engine, and (later) the learning updater.

Completion path: fim.build_prompt -> engine.Engine.generate.
Model files: model_store (starter model, int8 ONNX cache).
"""
