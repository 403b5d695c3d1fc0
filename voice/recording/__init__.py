"""Call recording done by the voice runtime itself (media-stream and console calls)."""
