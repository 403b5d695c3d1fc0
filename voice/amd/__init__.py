"""Answering-machine detection (AMD) for outbound calls: the detector over call audio (:mod:`.detector`, beeps in
:mod:`.tone`, silero per window in :mod:`.silero_frames`) and its use on a live call (:mod:`.listener`)."""
