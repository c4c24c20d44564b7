"""Raw sensor data: colour filter arrays, the sensor noise model, raw file I/O."""
