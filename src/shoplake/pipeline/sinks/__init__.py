"""Where silver rows go besides Delta."""
