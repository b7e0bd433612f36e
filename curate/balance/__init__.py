"""Balancing beyond MetaCLIP's entries: RealSyn's semantic cap on k-means clusters of embeddings."""
