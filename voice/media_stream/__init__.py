"""Twilio Media Streams (JSON over WebSocket, μ-law 8 kHz) bridged to a livekit-agents ``AgentSession``."""
