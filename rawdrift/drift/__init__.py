"""The drift controls: synthesis (with common-corruption comparison), forensics, adjustment."""
