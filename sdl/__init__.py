"""sdl: a self-driving laboratory framework."""
