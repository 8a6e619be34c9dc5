"""The knowledge pipeline: load → split → embed → store → retrieve → prompt → answer."""
