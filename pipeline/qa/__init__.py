"""Quality checks of spoken audio: transcription (ASR) and comparison with the script."""
