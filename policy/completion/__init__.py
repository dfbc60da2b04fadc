"""The completion path: context -> prompt -> engine -> post-processing filters -> suggestion."""
