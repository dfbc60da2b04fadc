"""The workspace as the model sees it: an index of the repository, and the context it puts in prompts."""
