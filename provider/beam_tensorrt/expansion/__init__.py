"""Our expansion service: ClassifyText for Beam YAML and other SDKs (Java), and nothing else."""
