"""Model registry: model flavors (save/load), signatures, versions and aliases."""
