"""`needle show`: an offline viewer over a bundle's model."""
