"""k-means over embeddings, the one path every stage that clusters takes (SemDeDup, semantic
balance, DataComp's image-based filter): a keyed training sample, spherical centroids, the
nearest centroid of each row."""
