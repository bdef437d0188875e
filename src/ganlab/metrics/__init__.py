"""FID and KID: the Inception extractor, the metrics, the real-statistics cache, the callback."""
