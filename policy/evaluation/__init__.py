"""How good a model is: held-out loss, exact match, HumanEval infilling in a sandbox, pass@k.
May import model, inference, completion and pretraining (the held-out modules); never learning."""
