"""alpsim."""
