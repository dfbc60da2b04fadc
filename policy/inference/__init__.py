"""The engines that run a model (onnxruntime with a KV cache and copying, or a remote server)
and how a model version is loaded onto one. Imports model only."""
