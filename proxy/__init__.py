"""The HTTP side of denyproxy: forwarding, filtering, the rules API and the admin listener."""
