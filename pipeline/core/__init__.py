"""Foundation every layer may use: errors, units, atomic files, child processes and ffmpeg."""
