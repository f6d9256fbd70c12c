"""Media: HLS ingest, the timeline index, cutting clips and recordings with PyAV, probing."""
