"""The review site: built tracks as pages with waveform, loudness, transcript and QA flags."""
