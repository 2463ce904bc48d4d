"""The Setup page's sections: presets, the launch outcome, the safety checks before launch, YAML upload, and the search and depth form parts."""
