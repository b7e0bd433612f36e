"""curate: image-text training data curation as one Apache Beam graph."""
__version__ = "0.1.0"
