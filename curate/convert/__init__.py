"""Image format conversion: shards whose images every WebDataset loader reads (stage.py)."""
