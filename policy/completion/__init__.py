"""The completion path: context (what kind of suggestion) -> prompt (the FIM layout and windows)
-> the engine -> post-processing filters -> a suggestion. Imports inference and model only."""
