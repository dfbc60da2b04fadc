"""The starter model's data and trainer: the corpus from installed Python, cross-file rows, the
training script. May import model, completion (the prompt layout), workspace and evaluation."""
