"""Datasets: our benchmarks (SynthAV, TuxAV) and the public ones, all indexed as FrameRecords."""
