"""Live events and numbers over WebSocket."""
