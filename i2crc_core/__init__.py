"""I2CRC core library."""
