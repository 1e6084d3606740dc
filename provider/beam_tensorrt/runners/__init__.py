"""Runners beam-tensorrt starts for you (a local Flink job server)."""
