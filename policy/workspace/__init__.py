"""The workspace as the model sees it: an index of the repository, the context it puts in prompts,
and its token table for copying. Imports completion.prompt, inference (the copy tables), model and
feedback.secrets; never learning, evaluation or pretraining."""
